using System.CommandLine;
using System.Text.Json;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Cli.Connection;
using OrthancSeg.Cli.Output;

namespace OrthancSeg.Cli.Commands;

/// <summary>`orthancseg dead-letters list|show ID|retry ID|discard ID`.</summary>
internal static class DeadLettersCommand
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    public static Command Create()
    {
        var command = new Command("dead-letters", "Jobs that failed every attempt: list them, show one, retry one, discard one");
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
        var show = new Command("show", "Show one dead letter: its error, attempts, what it was about (payload), and how to retry or discard it") { id };
        show.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var job = (await worker.Jobs.GetJobAsync(new GetJobRequest { Id = parseResult.GetValue(id) },
                deadline: DateTime.UtcNow + Deadline, cancellationToken: ct)).Job;
            if (job.State != JobState.Dead)
            {
                throw new CliException($"Job {job.Id} ({job.Kind} {job.Key}) is not a dead letter: it is {Formatting.Word(job.State)}. "
                    + $"See it with: orthancseg jobs show {job.Id}", ExitCodes.Unhealthy);
            }
            if (output.Json)
            {
                output.WriteJson(JobsCommand.ToJson(job));
                return ExitCodes.Ok;
            }
            output.Table(["FIELD", "VALUE"], new List<IReadOnlyList<string>>
            {
                new[] { "dead letter", Formatting.Number(job.Id) },
                new[] { "kind", job.Kind },
                new[] { "key", job.Key },
                new[] { "attempts", $"{job.Attempts} of {job.MaxAttempts} ({job.Waits} hand-back(s) that did not count)" },
                new[] { "created", Formatting.Time(job.CreateTime) },
                new[] { "last attempt", Formatting.Time(job.StartTime) },
                new[] { "dead since", Formatting.Time(job.FinishTime) },
            }.Concat(PayloadSummary(job.PayloadJson).Select(p => (IReadOnlyList<string>)[$"payload {p.Name}", p.Value])));
            output.Line();
            output.Line("Last error:");
            output.Line(job.LastError.Length > 0 ? job.LastError : "(none recorded)");
            output.Line();
            output.Line($"Retry it with fresh attempts: orthancseg dead-letters retry {job.Id}");
            output.Line($"End it for good:              orthancseg dead-letters discard {job.Id}");
            return ExitCodes.Ok;
        }, cancellationToken));
        command.Subcommands.Add(show.WithExamples("orthancseg dead-letters show 7", "orthancseg dead-letters show 7 --json"));

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

    /// <summary>The payload's top-level fields, one line each: scalars as they are, arrays and objects by their size, long values cut.</summary>
    private static IEnumerable<(string Name, string Value)> PayloadSummary(string payloadJson)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(payloadJson.Length > 0 ? payloadJson : "{}");
        }
        catch (JsonException)
        {
            return [("(raw)", Cut(payloadJson))];
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                return [("(raw)", Cut(payloadJson))];
            }
            return [.. document.RootElement.EnumerateObject().Select(p => (p.Name, p.Value.ValueKind switch
            {
                JsonValueKind.Array => $"[{p.Value.GetArrayLength()} item(s)]",
                JsonValueKind.Object => $"{{{p.Value.EnumerateObject().Count()} field(s)}}",
                JsonValueKind.String => Cut(p.Value.GetString()!),
                _ => Cut(p.Value.GetRawText()),
            }))];
        }
    }

    private static string Cut(string text)
    {
        var line = text.ReplaceLineEndings(" ");
        return line.Length <= 100 ? line : line[..99] + "…";
    }
}
