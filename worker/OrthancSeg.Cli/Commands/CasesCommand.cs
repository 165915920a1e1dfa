using System.CommandLine;
using OrthancSeg.Cli.Connection;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Cli.Output;

namespace OrthancSeg.Cli.Commands;

/// <summary>`orthancseg cases list|show|exclude|include`.</summary>
internal static class CasesCommand
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    public static Command Create()
    {
        var command = new Command("cases", "List and show cases (series admitted to a workflow), exclude them from training or include them again");
        command.Subcommands.Add(ListCommand());
        command.Subcommands.Add(ShowCommand());
        command.Subcommands.Add(ExcludeCommand());
        command.Subcommands.Add(IncludeCommand());
        return command.WithExamples(
            "orthancseg cases list --workflow liver-ct",
            "orthancseg cases show liverct_k3m9x2ab",
            "orthancseg cases exclude liverct_k3m9x2ab --reason 'motion artefacts in the arterial phase'");
    }

    private static Command ListCommand()
    {
        var workflow = new Option<string?>("--workflow") { Description = "Only cases of this workflow" };
        var status = new Option<string?>("--status") { Description = "Only cases in this status: unlabeled, labeled or unusable" };
        status.CompletionSources.Add(Formatting.Words<CaseStatus>());
        var excluded = new Option<bool>("--excluded") { Description = "Only cases excluded from training (cases exclude)" };
        var limit = new Option<int>("--limit") { Description = "At most this many cases (0 = all)", DefaultValueFactory = _ => 0 };
        var command = new Command("list", "List cases, newest first") { workflow, status, excluded, limit };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var request = new ListCasesRequest { Workflow = parseResult.GetValue(workflow) ?? "", PageSize = 1000 };
            if (parseResult.GetValue(status) is { } s)
            {
                request.Status = Formatting.Parse<CaseStatus>(s) ?? throw new CliException($"--status {s}: use unlabeled, labeled or unusable", ExitCodes.Usage);
            }
            if (parseResult.GetValue(excluded))
            {
                request.Excluded = true;
            }
            var max = parseResult.GetValue(limit);
            var all = await Paging.AllAsync(async token =>
            {
                request.PageToken = token;
                var page = await worker.Cases.ListCasesAsync(request, deadline: DateTime.UtcNow + Deadline, cancellationToken: ct);
                return (page.Cases.AsEnumerable(), page.NextPageToken);
            }, max);
            if (output.Json)
            {
                output.WriteJson(all.Select(c => ToJson(c)));
            }
            else
            {
                output.Table(["CASE", "WORKFLOW", "STATUS", "MODALITY", "SLICES", "LABELS", "TRAINING", "DESCRIPTION", "CREATED"], all.Select(c => (IReadOnlyList<string>)[
                    c.CaseKey, c.Workflow, Formatting.Word(c.Status), c.Modality, Formatting.Number(c.InstanceCount), Formatting.Number(c.LabelCount),
                    c.Excluded ? "excluded" : "included", c.SeriesDescription, Formatting.Time(c.CreateTime)]));
            }
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg cases list --workflow liver-ct",
            "orthancseg cases list --status labeled --limit 20",
            "orthancseg cases list --workflow liver-ct --json");
    }

    private static Command ShowCommand()
    {
        var key = new Argument<string>("case-key") { Description = "The case key, e.g. liverct_k3m9x2ab" };
        var command = new Command("show", "Show one case with its slices and current label") { key };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var c = (await worker.Cases.GetCaseAsync(new GetCaseRequest { CaseKey = parseResult.GetValue(key)! }, deadline: DateTime.UtcNow + Deadline, cancellationToken: ct)).Case;
            // Every label of the case (a model's proposal, a person's SEG, an import) and which one is current.
            var labelsRequest = new ListLabelsRequest { CaseKey = c.CaseKey, PageSize = 1000 };
            var labels = await Paging.AllAsync(async token =>
            {
                labelsRequest.PageToken = token;
                var page = await worker.Labels.ListLabelsAsync(labelsRequest, deadline: DateTime.UtcNow + Deadline, cancellationToken: ct);
                return (page.Labels.AsEnumerable(), page.NextPageToken);
            });
            if (output.Json)
            {
                output.WriteJson(ToJson(c, labels));
                return ExitCodes.Ok;
            }
            var g = c.Geometry;
            output.Table(["FIELD", "VALUE"], new List<IReadOnlyList<string>>
            {
                new[] { "case", c.CaseKey },
                new[] { "workflow", c.Workflow },
                new[] { "status", Formatting.Word(c.Status) + (c.StatusReason.Length > 0 ? $": {c.StatusReason}" : "") },
                new[] { "orthanc series", c.OrthancSeriesId },
                new[] { "orthanc study", c.OrthancStudyId },
                new[] { "study uid", c.StudyInstanceUid },
                new[] { "series uid", c.SeriesInstanceUid },
                new[] { "frame of reference", c.FrameOfReferenceUid },
                new[] { "modality", c.Modality },
                new[] { "description", c.SeriesDescription },
                new[] { "body part", c.BodyPart },
                new[] { "instances", Formatting.Number(c.InstanceCount) },
                new[] { "grid", g is null ? "none" : $"{g.Columns} × {g.Rows} × {g.Slices}, spacing {string.Join(" × ", g.Spacing.Select(v => v.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)))} mm" },
                new[] { "current label", c.CurrentLabelSopInstanceUid.Length == 0 ? "none" : c.CurrentLabelSopInstanceUid },
                new[] { "labels", Formatting.Number(c.LabelCount) },
                new[] { "training", Training(c) },
                new[] { "created", Formatting.Time(c.CreateTime) },
                new[] { "updated", Formatting.Time(c.UpdateTime) },
            });
            output.Line();
            LabelsCommand.Table(output, labels);
            output.Line();
            output.Table(["SLICE", "SOP INSTANCE UID"], c.SopInstanceUids.Select((uid, i) => (IReadOnlyList<string>)[Formatting.Number(i), uid]));
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg cases show liverct_k3m9x2ab",
            "orthancseg cases show liverct_k3m9x2ab --json");
    }

    private static Command ExcludeCommand()
    {
        var key = new Argument<string>("case-key") { Description = "The case key, e.g. liverct_k3m9x2ab" };
        var reason = new Option<string>("--reason") { Description = "Why the case must not train a model, in words the next person can act on", Required = true };
        var command = new Command("exclude", "Exclude a case from training: exports leave it out with the reason, the retrain policy does not count its labels")
        {
            key, reason,
        };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            Changed(output, (await worker.Cases.ExcludeCaseAsync(new ExcludeCaseRequest { CaseKey = parseResult.GetValue(key)!, Reason = parseResult.GetValue(reason)! },
                deadline: DateTime.UtcNow + Deadline, cancellationToken: ct)).Case);
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg cases exclude liverct_k3m9x2ab --reason 'motion artefacts in the arterial phase'",
            "orthancseg cases exclude liverct_k3m9x2ab --reason 'duplicate of liverct_p2q8r7st' --json");
    }

    private static Command IncludeCommand()
    {
        var key = new Argument<string>("case-key") { Description = "The case key, e.g. liverct_k3m9x2ab" };
        var command = new Command("include", "Include an excluded case in training again: the next export takes it") { key };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            Changed(output, (await worker.Cases.IncludeCaseAsync(new IncludeCaseRequest { CaseKey = parseResult.GetValue(key)! },
                deadline: DateTime.UtcNow + Deadline, cancellationToken: ct)).Case);
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples("orthancseg cases include liverct_k3m9x2ab");
    }

    /// <summary>A case after exclude or include: its fields, or its JSON.</summary>
    private static void Changed(Output.ConsoleOutput output, Case c)
    {
        if (output.Json)
        {
            output.WriteJson(ToJson(c));
        }
        else
        {
            output.Table(["CASE", "WORKFLOW", "TRAINING"], [[c.CaseKey, c.Workflow, Training(c)]]);
        }
    }

    private static string Training(Case c) =>
        c.Excluded ? $"excluded by {c.ExcludedBy} at {Formatting.Time(c.ExcludeTime)}: {c.ExclusionReason}" : "included";

    private static object ToJson(Case c, IEnumerable<Label>? labels = null) => new
    {
        caseKey = c.CaseKey,
        workflow = c.Workflow,
        status = Formatting.Word(c.Status),
        statusReason = c.StatusReason,
        orthancSeriesId = c.OrthancSeriesId,
        orthancStudyId = c.OrthancStudyId,
        studyInstanceUid = c.StudyInstanceUid,
        seriesInstanceUid = c.SeriesInstanceUid,
        frameOfReferenceUid = c.FrameOfReferenceUid,
        sopInstanceUids = c.SopInstanceUids.ToArray(),
        modality = c.Modality,
        seriesDescription = c.SeriesDescription,
        bodyPart = c.BodyPart,
        instanceCount = c.InstanceCount,
        geometry = c.Geometry is { } g
            ? new { columns = g.Columns, rows = g.Rows, slices = g.Slices, spacing = g.Spacing.ToArray(), origin = g.Origin.ToArray(), orientation = g.Orientation.ToArray() }
            : null,
        currentLabel = c.CurrentLabelSopInstanceUid,
        labelCount = c.LabelCount,
        excluded = c.Excluded,
        exclusionReason = c.ExclusionReason,
        excludedBy = c.ExcludedBy,
        excludeTime = Formatting.TimeValue(c.ExcludeTime),
        labels = labels?.Select(LabelsCommand.ToJson).ToArray(),
        createTime = Formatting.TimeValue(c.CreateTime),
        updateTime = Formatting.TimeValue(c.UpdateTime),
    };
}
