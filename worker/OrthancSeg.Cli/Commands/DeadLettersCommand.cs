using System.CommandLine;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Cli.Connection;
using OrthancSeg.Cli.Output;

namespace OrthancSeg.Cli.Commands;

/// <summary>`orthancseg dead-letters list|retry ID|discard ID`.</summary>
internal static class DeadLettersCommand
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    public static Command Create()
    {
        var command = new Command("dead-letters", "Jobs that failed every attempt: list them, retry one, discard one");
        var list = new Command("list", "List dead letters, newest first");
        list.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var request = new ListDeadLettersRequest { PageSize = 1000 };
            var all = await Paging.AllAsync(async token =>
            {
                request.PageToken = token;
                var page = await worker.Jobs.ListDeadLettersAsync(request, deadline: DateTime.UtcNow + Deadline, cancellationToken: ct);
                return (page.DeadLetters.AsEnumerable(), page.NextPageToken);
            });
            if (output.Json)
            {
                output.WriteJson(all.Select(d => new
                {
                    id = d.Id, kind = d.Kind, key = d.Key, attempts = d.Attempts, lastError = d.LastError,
                    createTime = Formatting.TimeValue(d.CreateTime), deadTime = Formatting.TimeValue(d.DeadTime),
                }));
            }
            else
            {
                output.Table(["ID", "KIND", "KEY", "ATTEMPTS", "DEAD SINCE", "LAST ERROR"], all.Select(d => (IReadOnlyList<string>)[
                    Formatting.Number(d.Id), d.Kind, d.Key, Formatting.Number(d.Attempts), Formatting.Time(d.DeadTime), d.LastError]));
            }
            return ExitCodes.Ok;
        }, cancellationToken));
        command.Subcommands.Add(list.WithExamples("orthancseg dead-letters list", "orthancseg dead-letters list --json"));

        var id = new Argument<long>("id") { Description = "The dead letter's id (from dead-letters list)" };
        var retry = new Command("retry", "Queue a dead letter again with fresh attempts") { id };
        retry.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var response = await worker.Jobs.RetryDeadLetterAsync(new RetryDeadLetterRequest { Id = parseResult.GetValue(id) },
                deadline: DateTime.UtcNow + Deadline, cancellationToken: ct);
            if (output.Json)
            {
                output.WriteJson(new { id = response.Id, queued = true });
            }
            else
            {
                output.Line($"Job {response.Id} is queued again");
            }
            return ExitCodes.Ok;
        }, cancellationToken));
        command.Subcommands.Add(retry.WithExamples("orthancseg dead-letters retry 7"));

        var discard = new Command("discard", "End a dead letter for good: its job becomes cancelled and is not retried; its snapshot or training run stays failed") { id };
        discard.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var job = (await worker.Jobs.DiscardDeadLetterAsync(new DiscardDeadLetterRequest { Id = parseResult.GetValue(id) },
                deadline: DateTime.UtcNow + Deadline, cancellationToken: ct)).Job;
            if (output.Json)
            {
                output.WriteJson(JobsCommand.ToJson(job));
            }
            else
            {
                output.Line(job.State == JobState.Cancelled
                    ? $"Job {job.Id} ({job.Kind} {job.Key}) is discarded"
                    : $"Job {job.Id} ({job.Kind} {job.Key}) is to be discarded at the next claim. Follow it with: orthancseg jobs show {job.Id}");
            }
            return job.State == JobState.Cancelled ? ExitCodes.Ok : ExitCodes.Unhealthy;
        }, cancellationToken));
        command.Subcommands.Add(discard.WithExamples("orthancseg dead-letters discard 7"));
        return command.WithExamples(
            "orthancseg dead-letters list",
            "orthancseg dead-letters retry 7");
    }
}
