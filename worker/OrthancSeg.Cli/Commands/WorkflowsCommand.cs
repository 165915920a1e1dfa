using System.CommandLine;
using System.Globalization;
using OrthancSeg.Cli.Connection;
using OrthancSeg.Cli.Output;
using OrthancSeg.Contracts.V1;

namespace OrthancSeg.Cli.Commands;

/// <summary>`orthancseg workflows create|list|get (show)|update|auto-infer|pause|resume`.</summary>
internal static class WorkflowsCommand
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    public static Command Create()
    {
        var command = new Command("workflows", "Create, list, show, pause and resume workflows");
        command.Subcommands.Add(CreateCommand());
        command.Subcommands.Add(ListCommand());
        command.Subcommands.Add(GetCommand());
        command.Subcommands.Add(UpdateCommand());
        command.Subcommands.Add(AutoInferCommand());
        command.Subcommands.Add(StateCommand("pause", "Stop admitting new series (labels are still recorded)", pause: true).WithExamples("orthancseg workflows pause liver-ct"));
        command.Subcommands.Add(StateCommand("resume", "Admit series again and backfill what arrived meanwhile", pause: false).WithExamples("orthancseg workflows resume liver-ct"));
        return command.WithExamples(
            "orthancseg workflows list",
            "orthancseg workflows get liver-ct");
    }

    private static Command CreateCommand()
    {
        var name = new Option<string>("--name") { Description = "Workflow name: lower-case letters, digits, dashes (e.g. liver-ct)", Required = true };
        var datasetId = new Option<int>("--dataset-id") { Description = "nnU-Net dataset id, 1..999", Required = true };
        var datasetName = new Option<string?>("--dataset-name") { Description = "nnU-Net dataset name (default: the name without dashes)" };
        var modality = new Option<string?>("--modality") { Description = "Admit only this Modality (e.g. CT)" };
        var description = new Option<string?>("--series-description") { Description = "Admit only series whose SeriesDescription matches this .NET regex" };
        var bodyPart = new Option<string?>("--body-part") { Description = "Admit only this BodyPartExamined" };
        var labels = new Option<string>("--labels") { Description = "Label schema: name=value,... (e.g. liver=1,tumor=2)", Required = true };
        var synonyms = new Option<string[]>("--synonym") { Description = "Another name for a label: label=synonym (repeatable)", AllowMultipleArgumentsPerToken = false };
        var noOhif = new Option<bool>("--no-ohif-default-names") { Description = "Do not map OHIF's default names \"Segment N\" to label value N" };
        var autoInfer = new Option<bool>("--auto-infer") { Description = "Predict every new case with the workflow's active model (docs/inference.md)" };
        var command = new Command("create", "Create a workflow; series already in Orthanc that match it become cases")
        {
            name, datasetId, datasetName, modality, description, bodyPart, labels, synonyms, noOhif, autoInfer,
        };
        var training = new TrainingFlags();
        training.AddTo(command);
        var retrain = new RetrainFlags();
        retrain.AddTo(command);
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var workflow = new Workflow
            {
                Name = parseResult.GetValue(name)!,
                DatasetId = parseResult.GetValue(datasetId),
                DatasetName = parseResult.GetValue(datasetName) ?? "",
                Selection = new SelectionRule
                {
                    Modality = parseResult.GetValue(modality) ?? "",
                    SeriesDescriptionPattern = parseResult.GetValue(description) ?? "",
                    BodyPart = parseResult.GetValue(bodyPart) ?? "",
                },
                AllowOhifDefaultNames = !parseResult.GetValue(noOhif),
                Inference = new InferencePolicy { AutoInfer = parseResult.GetValue(autoInfer) },
            };
            workflow.Labels.AddRange(ParseLabels(parseResult.GetValue(labels)!, parseResult.GetValue(synonyms) ?? []));
            if (training.AnyGiven(parseResult))
            {
                workflow.TrainingDefaults = training.Read(parseResult, null);
            }
            if (retrain.AnyGiven(parseResult))
            {
                workflow.RetrainPolicy = retrain.Read(parseResult, null);
            }
            var response = await worker.Workflows.CreateWorkflowAsync(new CreateWorkflowRequest { Workflow = workflow, SetAllowOhifDefaultNames = true },
                deadline: DateTime.UtcNow + Deadline, cancellationToken: ct);
            Show(output, response.Workflow);
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg workflows create --name liver-ct --dataset-id 501 --modality CT --series-description '(?i)abdomen|liver' --labels liver=1,tumor=2 --synonym tumor=lesion",
            "orthancseg workflows create --name spleen-ct --dataset-id 502 --labels spleen=1 --folds all --gpus 1 --retrain on --retrain-after 20");
    }

    private static Command ListCommand()
    {
        var state = new Option<string?>("--state") { Description = "Only workflows in this state: active or paused" };
        state.CompletionSources.Add(Formatting.Words<WorkflowState>());
        var command = new Command("list", "List workflows") { state };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var request = new ListWorkflowsRequest { PageSize = 500 };
            if (parseResult.GetValue(state) is { } s)
            {
                request.State = Formatting.Parse<WorkflowState>(s) ?? throw new CliException($"--state {s}: use active or paused", ExitCodes.Usage);
            }
            var all = await Paging.AllAsync(async token =>
            {
                request.PageToken = token;
                var page = await worker.Workflows.ListWorkflowsAsync(request, deadline: DateTime.UtcNow + Deadline, cancellationToken: ct);
                return (page.Workflows.AsEnumerable(), page.NextPageToken);
            });
            if (output.Json)
            {
                output.WriteJson(all.Select(ToJson));
            }
            else
            {
                output.Table(["NAME", "STATE", "DATASET", "CASES", "LABELED", "SELECTION", "LABELS"], all.Select(w => (IReadOnlyList<string>)[
                    w.Name, Formatting.Word(w.State), $"{w.DatasetId:000} {w.DatasetName}", Formatting.Number(w.CaseCount), Formatting.Number(w.LabeledCaseCount),
                    Selection(w.Selection), string.Join(",", w.Labels.Select(l => $"{l.Name}={l.Value}"))]));
            }
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg workflows list",
            "orthancseg workflows list --state paused --json");
    }

    private static Command GetCommand()
    {
        var name = new Argument<string>("name") { Description = "The workflow's name" };
        var command = new Command("get", "Show one workflow, with its training defaults and retrain policy") { name };
        command.Aliases.Add("show");
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var response = await worker.Workflows.GetWorkflowAsync(new GetWorkflowRequest { Name = parseResult.GetValue(name)! },
                deadline: DateTime.UtcNow + Deadline, cancellationToken: ct);
            Show(output, response.Workflow);
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg workflows get liver-ct",
            "orthancseg workflows show liver-ct --json");
    }

    private static Command UpdateCommand()
    {
        var name = new Argument<string>("name") { Description = "The workflow's name" };
        var reset = new Option<bool>("--reset-training-defaults") { Description = "Forget the workflow's training defaults (the built-in ones apply)" };
        var command = new Command("update", "Change a workflow's training defaults (the flags given; the others are kept) and its retrain policy") { name, reset };
        var training = new TrainingFlags();
        training.AddTo(command);
        var retrain = new RetrainFlags();
        retrain.AddTo(command);
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var current = (await worker.Workflows.GetWorkflowAsync(new GetWorkflowRequest { Name = parseResult.GetValue(name)! },
                deadline: DateTime.UtcNow + Deadline, cancellationToken: ct)).Workflow;
            var request = new UpdateWorkflowRequest { Workflow = new Workflow { Name = current.Name }, UpdateMask = new() };
            if (parseResult.GetValue(reset) || training.AnyGiven(parseResult))
            {
                request.Workflow.TrainingDefaults = training.Read(parseResult, parseResult.GetValue(reset) ? null : current.TrainingDefaults);
                request.UpdateMask.Paths.Add("training_defaults");
            }
            if (retrain.AnyGiven(parseResult))
            {
                request.Workflow.RetrainPolicy = retrain.Read(parseResult, current.RetrainPolicy);
                request.UpdateMask.Paths.Add("retrain_policy");
            }
            if (request.UpdateMask.Paths.Count == 0)
            {
                throw new CliException("Nothing to change: give training flags (e.g. --folds all --gpus 1) or retrain flags (e.g. --retrain on --retrain-after 10)",
                    ExitCodes.Usage);
            }
            Show(output, (await worker.Workflows.UpdateWorkflowAsync(request, deadline: DateTime.UtcNow + Deadline, cancellationToken: ct)).Workflow);
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg workflows update liver-ct --folds all --gpus 1",
            "orthancseg workflows update liver-ct --retrain on --retrain-after 20 --min-dice-improvement 0.01");
    }

    private static Command AutoInferCommand()
    {
        var name = new Argument<string>("name") { Description = "The workflow's name" };
        var state = new Argument<string>("on|off") { Description = "on: every new case gets a prediction of the active model; off: none" };
        var command = new Command("auto-infer", "Turn automatic inference of new cases on or off") { name, state };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var on = parseResult.GetValue(state) switch
            {
                "on" => true,
                "off" => false,
                var other => throw new CliException($"auto-infer: '{other}' is not on or off", ExitCodes.Usage),
            };
            var request = new UpdateWorkflowRequest
            {
                Workflow = new Workflow { Name = parseResult.GetValue(name)!, Inference = new InferencePolicy { AutoInfer = on } },
                UpdateMask = new Google.Protobuf.WellKnownTypes.FieldMask { Paths = { "inference" } },
            };
            Show(output, (await worker.Workflows.UpdateWorkflowAsync(request, deadline: DateTime.UtcNow + Deadline, cancellationToken: ct)).Workflow);
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg workflows auto-infer liver-ct on",
            "orthancseg workflows auto-infer liver-ct off");
    }

    private static Command StateCommand(string verb, string description, bool pause)
    {
        var name = new Argument<string>("name") { Description = "The workflow's name" };
        var command = new Command(verb, description) { name };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var workflowName = parseResult.GetValue(name)!;
            var workflow = pause
                ? (await worker.Workflows.PauseWorkflowAsync(new PauseWorkflowRequest { Name = workflowName }, deadline: DateTime.UtcNow + Deadline, cancellationToken: ct)).Workflow
                : (await worker.Workflows.ResumeWorkflowAsync(new ResumeWorkflowRequest { Name = workflowName }, deadline: DateTime.UtcNow + Deadline, cancellationToken: ct)).Workflow;
            Show(output, workflow);
            return ExitCodes.Ok;
        }, cancellationToken));
        return command;
    }

    /// <summary>"liver=1,tumor=2" with "tumor=lesion" synonyms; throws a CliException naming the bad part.</summary>
    internal static IReadOnlyList<LabelDefinition> ParseLabels(string labels, IReadOnlyList<string> synonyms)
    {
        var result = new List<LabelDefinition>();
        foreach (var part in labels.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var pieces = part.Split('=', 2, StringSplitOptions.TrimEntries);
            if (pieces.Length != 2 || pieces[0].Length == 0 || !int.TryParse(pieces[1], NumberStyles.None, CultureInfo.InvariantCulture, out var value))
            {
                throw new CliException($"--labels: '{part}' is not name=value (e.g. liver=1)", ExitCodes.Usage);
            }
            result.Add(new LabelDefinition { Name = pieces[0], Value = value });
        }
        if (result.Count == 0)
        {
            throw new CliException("--labels: give at least one label, e.g. liver=1,tumor=2", ExitCodes.Usage);
        }
        foreach (var synonym in synonyms)
        {
            var pieces = synonym.Split('=', 2, StringSplitOptions.TrimEntries);
            var label = pieces.Length == 2 ? result.Find(l => string.Equals(l.Name, pieces[0], StringComparison.OrdinalIgnoreCase)) : null;
            if (label is null || pieces[1].Length == 0)
            {
                throw new CliException($"--synonym: '{synonym}' is not label=synonym for one of the labels {string.Join(", ", result.Select(l => l.Name))}", ExitCodes.Usage);
            }
            label.Synonyms.Add(pieces[1]);
        }
        return result;
    }

    private static void Show(ConsoleOutput output, Workflow w)
    {
        if (output.Json)
        {
            output.WriteJson(ToJson(w));
            return;
        }
        output.Table(["FIELD", "VALUE"], new List<IReadOnlyList<string>>
        {
            new[] { "name", w.Name },
            new[] { "state", Formatting.Word(w.State) },
            new[] { "dataset", $"{w.DatasetId:000} {w.DatasetName}" },
            new[] { "case key prefix", w.CaseKeyPrefix },
            new[] { "selection", Selection(w.Selection) },
            new[] { "ohif default names", w.AllowOhifDefaultNames ? "Segment N → label N" : "not accepted" },
            new[] { "auto-inference", w.Inference?.AutoInfer == true ? "on: new cases are predicted by the active model" : "off" },
            new[] { "cases", $"{w.CaseCount} ({w.LabeledCaseCount} labeled)" },
            new[] { "training defaults", TrainingFlags.Describe(w.TrainingDefaults) },
            new[] { "retrain policy", TrainingFlags.Describe(w.RetrainPolicy) },
            new[] { "created", Formatting.Time(w.CreateTime) },
        });
        output.Line();
        output.Table(["VALUE", "LABEL", "SYNONYMS", "CODE", "COLOUR"], w.Labels.Select(l => (IReadOnlyList<string>)[
            Formatting.Number(l.Value), l.Name, string.Join(", ", l.Synonyms), l.Code, l.Colour]));
    }

    private static string Selection(SelectionRule? s)
    {
        if (s is null)
        {
            return "everything";
        }
        var parts = new List<string>();
        if (s.Modality.Length > 0)
        {
            parts.Add($"modality {s.Modality}");
        }
        if (s.SeriesDescriptionPattern.Length > 0)
        {
            parts.Add($"description ~ {s.SeriesDescriptionPattern}");
        }
        if (s.BodyPart.Length > 0)
        {
            parts.Add($"body part {s.BodyPart}");
        }
        return parts.Count == 0 ? "everything" : string.Join("; ", parts);
    }

    private static object ToJson(Workflow w) => new
    {
        name = w.Name,
        state = Formatting.Word(w.State),
        datasetId = w.DatasetId,
        datasetName = w.DatasetName,
        caseKeyPrefix = w.CaseKeyPrefix,
        selection = new { modality = w.Selection?.Modality, seriesDescription = w.Selection?.SeriesDescriptionPattern, bodyPart = w.Selection?.BodyPart },
        allowOhifDefaultNames = w.AllowOhifDefaultNames,
        autoInfer = w.Inference?.AutoInfer == true,
        labels = w.Labels.Select(l => new { value = l.Value, name = l.Name, synonyms = l.Synonyms.ToArray(), code = l.Code, colour = l.Colour }),
        caseCount = w.CaseCount,
        labeledCaseCount = w.LabeledCaseCount,
        createTime = Formatting.TimeValue(w.CreateTime),
        updateTime = Formatting.TimeValue(w.UpdateTime),
        trainingDefaults = w.TrainingDefaults is null ? (object?)null : System.Text.Json.JsonDocument.Parse(Google.Protobuf.JsonFormatter.Default.Format(w.TrainingDefaults)).RootElement,
        retrainPolicy = w.RetrainPolicy is null ? (object?)null : System.Text.Json.JsonDocument.Parse(Google.Protobuf.JsonFormatter.Default.Format(w.RetrainPolicy)).RootElement,
    };

}
