using System.CommandLine;
using OrthancSeg.Cli.Connection;
using OrthancSeg.Cli.Output;
using OrthancSeg.Contracts.V1;

namespace OrthancSeg.Cli.Commands;

/// <summary>`orthancseg jobs list [--kind K] [--state S] | show ID | cancel ID`: the worker's job engine for admins.</summary>
internal static class JobsCommand
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    public static Command Create()
    {
        var command = new Command("jobs", "Every piece of work the worker runs (recording, backfills, exports): list, show, cancel");
        command.Subcommands.Add(ListCommand());
        command.Subcommands.Add(ShowCommand());
        command.Subcommands.Add(CancelCommand());
        return command.WithExamples(
            "orthancseg jobs list --state running",
            "orthancseg jobs cancel 42");
    }

    private static Command ListCommand()
    {
        var kind = new Option<string?>("--kind") { Description = "Only jobs of this kind: series, segmentation, backfill, snapshot, …" };
        var state = new Option<string?>("--state") { Description = "Only jobs in this state: queued, running, succeeded, failed, dead or cancelled" };
        state.CompletionSources.Add(Formatting.Words<JobState>());
        var limit = new Option<int>("--limit") { Description = "At most this many, newest first (0 for all)", DefaultValueFactory = _ => 50 };
        var command = new Command("list", "List jobs, newest first") { kind, state, limit };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var request = new ListJobsRequest { Kind = parseResult.GetValue(kind) ?? "", PageSize = 1000 };
            if (parseResult.GetValue(state) is { } word)
            {
                request.State = Formatting.Parse<JobState>(word)
                    ?? throw new CliException($"--state {word} is not a job state; use queued, running, succeeded, failed, dead or cancelled", ExitCodes.Usage);
            }
            var max = parseResult.GetValue(limit);
            if (max > 0)
            {
                request.PageSize = Math.Min(max, 1000);
            }
            var jobs = new List<Job>();
            do
            {
                var page = await worker.Jobs.ListJobsAsync(request, deadline: DateTime.UtcNow + Deadline, cancellationToken: ct);
                jobs.AddRange(page.Jobs);
                request.PageToken = page.NextPageToken;
            }
            while (request.PageToken.Length > 0 && (max <= 0 || jobs.Count < max));
            if (max > 0 && jobs.Count > max)
            {
                jobs.RemoveRange(max, jobs.Count - max);
            }
            if (output.Json)
            {
                output.WriteJson(jobs.Select(ToJson));
            }
            else
            {
                output.Table(["ID", "KIND", "STATE", "ATTEMPTS", "KEY", "UPDATED", "LAST ERROR"], jobs.Select(j => (IReadOnlyList<string>)[
                    Formatting.Number(j.Id), j.Kind, StateText(j), $"{j.Attempts}/{j.MaxAttempts}", j.Key, Formatting.Time(j.UpdateTime), OneLine(j.LastError)]));
            }
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg jobs list",
            "orthancseg jobs list --state failed --kind snapshot",
            "orthancseg jobs list --limit 0 --json");
    }

    private static Command ShowCommand()
    {
        var id = new Argument<long>("id") { Description = "The job's id (from jobs list, or snapshots show)" };
        var command = new Command("show", "Show one job: state, attempts, lease, last error, times, payload") { id };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var job = (await worker.Jobs.GetJobAsync(new GetJobRequest { Id = parseResult.GetValue(id) }, deadline: DateTime.UtcNow + Deadline, cancellationToken: ct)).Job;
            Print(output, job);
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg jobs show 42");
    }

    private static Command CancelCommand()
    {
        var id = new Argument<long>("id") { Description = "The job's id" };
        var command = new Command("cancel", "Cancel a job: a waiting one never starts, a running one stops and its work is discarded") { id };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var job = (await worker.Jobs.CancelJobAsync(new CancelJobRequest { Id = parseResult.GetValue(id) }, deadline: DateTime.UtcNow + Deadline, cancellationToken: ct)).Job;
            if (output.Json)
            {
                output.WriteJson(ToJson(job));
            }
            else if (job.State == JobState.Cancelled)
            {
                output.Line($"Job {job.Id} ({job.Kind} {job.Key}) is cancelled");
            }
            else
            {
                output.Line($"Job {job.Id} ({job.Kind} {job.Key}) is {Formatting.Word(job.State)}; the cancel takes effect at its next check. Follow it with: orthancseg jobs show {job.Id}");
            }
            return job.State == JobState.Cancelled ? ExitCodes.Ok : ExitCodes.Unhealthy;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg jobs cancel 42");
    }

    private static void Print(ConsoleOutput output, Job j)
    {
        if (output.Json)
        {
            output.WriteJson(ToJson(j));
            return;
        }
        output.Table(["FIELD", "VALUE"], new List<IReadOnlyList<string>>
        {
            new[] { "job", Formatting.Number(j.Id) },
            new[] { "kind", j.Kind },
            new[] { "key", j.Key },
            new[] { "state", StateText(j) },
            new[] { "attempts", $"{j.Attempts} of {j.MaxAttempts} ({j.Waits} hand-back(s) that did not count)" },
            new[] { "owner", j.LeaseOwner },
            new[] { "lease until", Formatting.Time(j.LeaseExpireTime) },
            new[] { "next attempt", Formatting.Time(j.NextAttemptTime) },
            new[] { "last error", j.LastError },
            new[] { "created", Formatting.Time(j.CreateTime) },
            new[] { "started", Formatting.Time(j.StartTime) },
            new[] { "updated", Formatting.Time(j.UpdateTime) },
            new[] { "finished", Formatting.Time(j.FinishTime) },
            new[] { "payload", j.PayloadJson },
        });
    }

    private static string StateText(Job j) => Formatting.Word(j.State) + (j.CancelRequested ? " (cancel requested)" : "");

    private static string OneLine(string text)
    {
        var line = text.ReplaceLineEndings(" ");
        return line.Length <= 100 ? line : line[..99] + "…";
    }

    internal static object ToJson(Job j) => new
    {
        id = j.Id,
        kind = j.Kind,
        key = j.Key,
        state = Formatting.Word(j.State),
        attempts = j.Attempts,
        maxAttempts = j.MaxAttempts,
        waits = j.Waits,
        leaseOwner = j.LeaseOwner,
        leaseExpireTime = Formatting.TimeValue(j.LeaseExpireTime),
        nextAttemptTime = Formatting.TimeValue(j.NextAttemptTime),
        cancelRequested = j.CancelRequested,
        lastError = j.LastError,
        createTime = Formatting.TimeValue(j.CreateTime),
        startTime = Formatting.TimeValue(j.StartTime),
        updateTime = Formatting.TimeValue(j.UpdateTime),
        finishTime = Formatting.TimeValue(j.FinishTime),
        payload = j.PayloadJson,
    };
}
