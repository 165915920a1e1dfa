using System.CommandLine;
using System.Globalization;
using Grpc.Core;
using OrthancSeg.Cli.Connection;
using OrthancSeg.Cli.Output;
using OrthancSeg.Contracts.V1;

namespace OrthancSeg.Cli.Commands;

/// <summary>`orthancseg inference start|list|show|cancel`: a workflow's model predicts a case; its SEG goes back to Orthanc.</summary>
internal static class InferenceCommand
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    public static Command Create()
    {
        var command = new Command("inference", "Predict cases with a workflow's model; the SEG is stored in Orthanc as a proposed label: start, list, show, cancel");
        command.Subcommands.Add(StartCommand());
        command.Subcommands.Add(ListCommand());
        command.Subcommands.Add(ShowCommand());
        command.Subcommands.Add(CancelCommand());
        return command.WithExamples(
            "orthancseg inference start --workflow liver-ct --case liverct_k3m9x2ab --wait",
            "orthancseg inference list --workflow liver-ct");
    }

    private static Command StartCommand()
    {
        var workflow = new Option<string>("--workflow") { Description = "The workflow", Required = true };
        var caseKey = new Option<string?>("--case") { Description = "The case to predict" };
        var series = new Option<string?>("--series") { Description = "The SeriesInstanceUID of the case to predict (instead of --case)" };
        var model = new Option<long>("--model") { Description = "The model (default: the workflow's active model)" };
        var wait = new Option<bool>("--wait") { Description = "Follow the inference until it ends (exit code 1 unless it succeeded)" };
        var command = new Command("start", "Queue a prediction of one case") { workflow, caseKey, series, model, wait };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var request = new StartInferenceRequest
            {
                Workflow = parseResult.GetValue(workflow)!,
                CaseKey = parseResult.GetValue(caseKey) ?? "",
                SeriesInstanceUid = parseResult.GetValue(series) ?? "",
                ModelId = parseResult.GetValue(model),
            };
            if ((request.CaseKey.Length == 0) == (request.SeriesInstanceUid.Length == 0))
            {
                throw new CliException("inference start: give --case KEY or --series UID", ExitCodes.Usage);
            }
            var inference = (await worker.Inference.StartInferenceAsync(request, deadline: DateTime.UtcNow + Deadline, cancellationToken: ct)).Inference;
            if (!parseResult.GetValue(wait))
            {
                if (output.Json)
                {
                    output.WriteJson(ToJson(inference));
                }
                else
                {
                    output.Line(string.Create(CultureInfo.InvariantCulture,
                        $"Inference {inference.Id} of case {inference.CaseKey} with model {inference.ModelId} queued (orthancseg inference show {inference.Id})"));
                }
                return ExitCodes.Ok;
            }
            using (var watch = worker.Inference.WatchInference(new WatchInferenceRequest { Id = inference.Id }, cancellationToken: ct))
            {
                await foreach (var update in watch.ResponseStream.ReadAllAsync(ct))
                {
                    inference = update.Inference;
                    // One case: no count to show, only its state and how long it has taken.
                    output.Progress(string.Create(CultureInfo.InvariantCulture, $"inference {inference.Id}"), 0, 0, "",
                        Formatting.Word(inference.State) + (inference.Attempts > 1 ? string.Create(CultureInfo.InvariantCulture, $" (attempt {inference.Attempts})") : ""));
                }
            }
            output.EndProgress();
            Print(output, inference);
            return inference.State == InferenceState.Succeeded ? ExitCodes.Ok : ExitCodes.Unhealthy;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg inference start --workflow liver-ct --case liverct_k3m9x2ab",
            "orthancseg inference start --workflow liver-ct --series 1.2.826.0.1.3680043.8.498.1 --model 2 --wait");
    }

    private static Command ListCommand()
    {
        var workflow = new Option<string?>("--workflow") { Description = "Only inferences of this workflow" };
        var caseKey = new Option<string?>("--case") { Description = "Only inferences of this case" };
        var command = new Command("list", "List inferences, newest first") { workflow, caseKey };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var request = new ListInferencesRequest { Workflow = parseResult.GetValue(workflow) ?? "", CaseKey = parseResult.GetValue(caseKey) ?? "", PageSize = 500 };
            var all = await Paging.AllAsync(async token =>
            {
                request.PageToken = token;
                var page = await worker.Inference.ListInferencesAsync(request, deadline: DateTime.UtcNow + Deadline, cancellationToken: ct);
                return (page.Inferences.AsEnumerable(), page.NextPageToken);
            });
            if (output.Json)
            {
                output.WriteJson(all.Select(ToJson));
                return ExitCodes.Ok;
            }
            output.Table(["INFERENCE", "WORKFLOW", "CASE", "MODEL", "TRIGGER", "STATE", "OUTCOME", "LABEL", "CREATED", "ERROR"],
                all.Select(i => (IReadOnlyList<string>)[
                    Formatting.Number(i.Id), i.Workflow, i.CaseKey, Formatting.Number(i.ModelId), Formatting.Word(i.Trigger), Formatting.Word(i.State),
                    i.Outcome == InferenceOutcome.Unspecified ? "" : Formatting.Word(i.Outcome), i.LabelId == 0 ? "" : Formatting.Number(i.LabelId),
                    Formatting.Time(i.CreateTime), FirstLine(i.Error)]));
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg inference list",
            "orthancseg inference list --case liverct_k3m9x2ab --json");
    }

    private static Command ShowCommand()
    {
        var id = new Argument<long>("inference") { Description = "The inference number" };
        var command = new Command("show", "Show an inference: its case, model, backend, outcome, SEG and timings") { id };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            Print(output, (await worker.Inference.GetInferenceAsync(new GetInferenceRequest { Id = parseResult.GetValue(id) }, deadline: DateTime.UtcNow + Deadline,
                cancellationToken: ct)).Inference);
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg inference show 5");
    }

    private static Command CancelCommand()
    {
        var id = new Argument<long>("inference") { Description = "The inference number" };
        var command = new Command("cancel", "Cancel a queued or running inference: its predictor is stopped, nothing is stored") { id };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var inference = (await worker.Inference.CancelInferenceAsync(new CancelInferenceRequest { Id = parseResult.GetValue(id) },
                deadline: DateTime.UtcNow + Deadline, cancellationToken: ct)).Inference;
            if (output.Json)
            {
                output.WriteJson(ToJson(inference));
            }
            else
            {
                output.Line(string.Create(CultureInfo.InvariantCulture, $"Inference {inference.Id} is being cancelled"));
            }
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg inference cancel 5");
    }

    private static void Print(ConsoleOutput output, Inference i)
    {
        if (output.Json)
        {
            output.WriteJson(ToJson(i));
            return;
        }
        output.Table(["FIELD", "VALUE"], new List<IReadOnlyList<string>>
        {
            new[] { "inference", Formatting.Number(i.Id) },
            new[] { "workflow", i.Workflow },
            new[] { "case", i.CaseKey },
            new[] { "model", Formatting.Number(i.ModelId) },
            new[] { "trigger", Formatting.Word(i.Trigger) },
            new[] { "state", Formatting.Word(i.State) + (i.Outcome == InferenceOutcome.Unspecified ? "" : $": {Formatting.Word(i.Outcome)}") },
            new[] { "backend", i.BackendJobId.Length == 0 ? i.Backend : $"{i.Backend} ({i.BackendJobId})" },
            new[] { "attempts", Formatting.Number(i.Attempts) },
            new[] { "job", Formatting.Number(i.JobId) },
            new[] { "exit code", i.HasExitCode ? Formatting.Number(i.ExitCode) : "" },
            new[] { "seg", i.SegSopInstanceUid.Length == 0 ? "" : $"{i.SegSopInstanceUid} (Orthanc {i.SegOrthancInstanceId})" },
            new[] { "label", i.LabelId == 0 ? "" : $"{i.LabelId} (proposed until accepted: orthancseg labels accept {i.LabelId})" },
            new[] { "worker time", i.WorkerMs == 0 ? "" : $"{i.WorkerMs} ms" },
            new[] { "predictor time", i.PredictorMs == 0 ? "" : $"{i.PredictorMs} ms" },
            new[] { "created", Formatting.Time(i.CreateTime) },
            new[] { "finished", Formatting.Time(i.FinishTime) },
            new[] { "error", i.Error },
        });
    }

    private static string FirstLine(string text) => text.Split('\n', 2)[0];

    private static object ToJson(Inference i) => new
    {
        id = i.Id,
        workflow = i.Workflow,
        caseKey = i.CaseKey,
        modelId = i.ModelId,
        trigger = Formatting.Word(i.Trigger),
        backend = i.Backend,
        state = Formatting.Word(i.State),
        outcome = i.Outcome == InferenceOutcome.Unspecified ? null : Formatting.Word(i.Outcome),
        error = i.Error,
        attempts = i.Attempts,
        jobId = i.JobId,
        backendJobId = i.BackendJobId,
        exitCode = i.HasExitCode ? i.ExitCode : (int?)null,
        segSopInstanceUid = i.SegSopInstanceUid,
        segOrthancInstanceId = i.SegOrthancInstanceId,
        labelId = i.LabelId,
        workerMs = i.WorkerMs,
        predictorMs = i.PredictorMs,
        createTime = Formatting.TimeValue(i.CreateTime),
        startTime = Formatting.TimeValue(i.StartTime),
        finishTime = Formatting.TimeValue(i.FinishTime),
    };
}
