using System.CommandLine;
using System.Globalization;
using OrthancSeg.Cli.Connection;
using OrthancSeg.Cli.Output;
using OrthancSeg.Contracts.V1;

namespace OrthancSeg.Cli.Commands;

/// <summary>`orthancseg models list|show|activate`: the models training registered; one per workflow is active.</summary>
internal static class ModelsCommand
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    public static Command Create()
    {
        var command = new Command("models", "Trained nnU-Net models with their validation Dice: list, show, activate");
        command.Subcommands.Add(ListCommand());
        command.Subcommands.Add(ShowCommand());
        command.Subcommands.Add(ActivateCommand());
        return command.WithExamples(
            "orthancseg models list --workflow liver-ct",
            "orthancseg models activate 2");
    }

    private static Command ListCommand()
    {
        var workflow = new Option<string?>("--workflow") { Description = "Only models of this workflow" };
        var command = new Command("list", "List models, newest first") { workflow };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var request = new ListModelsRequest { Workflow = parseResult.GetValue(workflow) ?? "", PageSize = 500 };
            var all = await Paging.AllAsync(async token =>
            {
                request.PageToken = token;
                var page = await worker.Models.ListModelsAsync(request, deadline: DateTime.UtcNow + Deadline, cancellationToken: ct);
                return (page.Models.AsEnumerable(), page.NextPageToken);
            });
            if (output.Json)
            {
                output.WriteJson(all.Select(ToJson));
                return ExitCodes.Ok;
            }
            output.Table(["MODEL", "WORKFLOW", "ACTIVE", "RUN", "SNAPSHOT", "CONFIGURATION", "FOLDS", "MEAN DICE", "CREATED"],
                all.Select(m => (IReadOnlyList<string>)[
                    Formatting.Number(m.Id), m.Workflow, m.Active ? "yes" : "", Formatting.Number(m.RunId), Formatting.Number(m.SnapshotId), m.Configuration,
                    string.Join(',', m.Folds), Dice(m), Formatting.Time(m.CreateTime)]));
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg models list",
            "orthancseg models list --workflow liver-ct --json");
    }

    private static Command ShowCommand()
    {
        var id = new Argument<long>("model") { Description = "The model's id" };
        var command = new Command("show", "Show a model: where it is, how it was trained, its validation Dice per label, its lineage") { id };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            Print(output, (await worker.Models.GetModelAsync(new GetModelRequest { Id = parseResult.GetValue(id) }, deadline: DateTime.UtcNow + Deadline,
                cancellationToken: ct)).Model);
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg models show 2");
    }

    private static Command ActivateCommand()
    {
        var id = new Argument<long>("model") { Description = "The model's id" };
        var command = new Command("activate", "Make a model its workflow's active one (the one inference uses)") { id };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var model = (await worker.Models.ActivateModelAsync(new ActivateModelRequest { Id = parseResult.GetValue(id) }, deadline: DateTime.UtcNow + Deadline,
                cancellationToken: ct)).Model;
            if (output.Json)
            {
                output.WriteJson(ToJson(model));
            }
            else
            {
                output.Line(string.Create(CultureInfo.InvariantCulture, $"Model {model.Id} is now the active model of {model.Workflow}"));
            }
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg models activate 2");
    }

    private static void Print(ConsoleOutput output, Model m)
    {
        if (output.Json)
        {
            output.WriteJson(ToJson(m));
            return;
        }
        output.Table(["FIELD", "VALUE"], new List<IReadOnlyList<string>>
        {
            new[] { "model", Formatting.Number(m.Id) },
            new[] { "workflow", m.Workflow },
            new[] { "active", m.Active ? $"yes, since {Formatting.Time(m.ActivateTime)}" : "no" },
            new[] { "trained by run", Formatting.Number(m.RunId) },
            new[] { "on snapshot", $"{m.SnapshotId} (its cases and labels: orthancseg snapshots show {m.SnapshotId})" },
            new[] { "configuration", $"{m.Configuration}, {m.Trainer}, {m.Plans}" },
            new[] { "folds", string.Join(',', m.Folds) },
            new[] { "mean Dice", Dice(m) },
            new[] { "retrain comparison", TrainingFlags.Describe(m.Comparison) },
            new[] { "training time", TimeSpan.FromSeconds(m.TrainingSeconds).ToString() },
            new[] { "location", m.Location },
            new[] { "created", Formatting.Time(m.CreateTime) },
        });
        output.Line();
        output.Table(["LABEL", "NAME", "DICE"], m.LabelDice.Select(l => (IReadOnlyList<string>)[
            Formatting.Number(l.Value), l.Name, l.Dice.ToString("0.0000", CultureInfo.InvariantCulture)]));
    }

    private static string Dice(Model m) => m.HasMeanDice ? m.MeanDice.ToString("0.0000", CultureInfo.InvariantCulture) : "";

    private static object ToJson(Model m) => new
    {
        id = m.Id,
        workflow = m.Workflow,
        active = m.Active,
        runId = m.RunId,
        snapshotId = m.SnapshotId,
        location = m.Location,
        configuration = m.Configuration,
        trainer = m.Trainer,
        plans = m.Plans,
        folds = m.Folds.ToArray(),
        meanDice = m.HasMeanDice ? m.MeanDice : (double?)null,
        labelDice = m.LabelDice.Select(l => new { value = l.Value, name = l.Name, dice = l.Dice }).ToArray(),
        trainingSeconds = m.TrainingSeconds,
        createTime = Formatting.TimeValue(m.CreateTime),
        activateTime = Formatting.TimeValue(m.ActivateTime),
        comparison = ComparisonJson(m.Comparison),
    };

    internal static object? ComparisonJson(ModelComparison? c) => c is null ? null : new
    {
        modelId = c.ModelId,
        activeModelId = c.ActiveModelId,
        activeDice = c.HasActiveDice ? c.ActiveDice : (double?)null,
        newDice = c.HasNewDice ? c.NewDice : (double?)null,
        minDiceImprovement = c.MinDiceImprovement,
        activated = c.Activated,
        reason = c.Reason,
        createTime = Formatting.TimeValue(c.CreateTime),
    };
}
