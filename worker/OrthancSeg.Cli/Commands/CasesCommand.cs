using System.CommandLine;
using OrthancSeg.Cli.Connection;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Cli.Output;

namespace OrthancSeg.Cli.Commands;

/// <summary>`orthancseg cases list|show`.</summary>
internal static class CasesCommand
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    public static Command Create()
    {
        var command = new Command("cases", "List and show cases (series admitted to a workflow)");
        command.Subcommands.Add(ListCommand());
        command.Subcommands.Add(ShowCommand());
        return command.WithExamples(
            "orthancseg cases list --workflow liver-ct",
            "orthancseg cases show liverct_k3m9x2ab");
    }

    private static Command ListCommand()
    {
        var workflow = new Option<string?>("--workflow") { Description = "Only cases of this workflow" };
        var status = new Option<string?>("--status") { Description = "Only cases in this status: unlabeled, labeled or unusable" };
        status.CompletionSources.Add(Formatting.Words<CaseStatus>());
        var limit = new Option<int>("--limit") { Description = "At most this many cases (0 = all)", DefaultValueFactory = _ => 0 };
        var command = new Command("list", "List cases, newest first") { workflow, status, limit };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var request = new ListCasesRequest { Workflow = parseResult.GetValue(workflow) ?? "", PageSize = 1000 };
            if (parseResult.GetValue(status) is { } s)
            {
                request.Status = Formatting.Parse<CaseStatus>(s) ?? throw new CliException($"--status {s}: use unlabeled, labeled or unusable", ExitCodes.Usage);
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
                output.Table(["CASE", "WORKFLOW", "STATUS", "MODALITY", "SLICES", "LABELS", "DESCRIPTION", "CREATED"], all.Select(c => (IReadOnlyList<string>)[
                    c.CaseKey, c.Workflow, Formatting.Word(c.Status), c.Modality, Formatting.Number(c.InstanceCount), Formatting.Number(c.LabelCount),
                    c.SeriesDescription, Formatting.Time(c.CreateTime)]));
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
        labels = labels?.Select(LabelsCommand.ToJson).ToArray(),
        createTime = Formatting.TimeValue(c.CreateTime),
        updateTime = Formatting.TimeValue(c.UpdateTime),
    };
}
