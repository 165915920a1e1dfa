using System.CommandLine;
using OrthancSeg.Cli.Connection;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Cli.Output;

namespace OrthancSeg.Cli.Commands;

/// <summary>`orthancseg labels list|pending|accept|reject|import`.</summary>
internal static class LabelsCommand
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    public static Command Create()
    {
        var command = new Command("labels", "The labels (segmentations) of cases: list, show, pending, accept or reject a model's, import a NIfTI label map");
        command.Subcommands.Add(ListCommand());
        command.Subcommands.Add(ShowCommand());
        command.Subcommands.Add(PendingCommand());
        command.Subcommands.Add(AcceptCommand());
        command.Subcommands.Add(RejectCommand());
        command.Subcommands.Add(ImportCommand());
        return command.WithExamples(
            "orthancseg labels list --case liverct_k3m9x2ab",
            "orthancseg labels accept 42");
    }

    private static Command ListCommand()
    {
        var caseKey = new Option<string>("--case") { Description = "The case key", Required = true };
        var command = new Command("list", "List a case's labels, newest first, with verdict and reason") { caseKey };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var request = new ListLabelsRequest { CaseKey = parseResult.GetValue(caseKey)!, PageSize = 1000 };
            var all = await Paging.AllAsync(async token =>
            {
                request.PageToken = token;
                var page = await worker.Labels.ListLabelsAsync(request, deadline: DateTime.UtcNow + Deadline, cancellationToken: ct);
                return (page.Labels.AsEnumerable(), page.NextPageToken);
            });
            if (output.Json)
            {
                output.WriteJson(all.Select(ToJson));
            }
            else
            {
                Table(output, all);
            }
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg labels list --case liverct_k3m9x2ab",
            "orthancseg labels list --case liverct_k3m9x2ab --json");
    }

    /// <summary>Labels as a table: which is current, each one's source and verdict.</summary>
    internal static void Table(Output.ConsoleOutput output, IEnumerable<Label> labels) =>
        output.Table(["ID", "SEG SOP INSTANCE UID", "CURRENT", "VERDICT", "SOURCE", "AUTHOR", "SEGMENTS", "SLICES", "REASON"], labels.Select(l => (IReadOnlyList<string>)[
            Formatting.Number(l.Id), l.SopInstanceUid, l.IsCurrent ? "*" : "", Formatting.Word(l.Verdict), Formatting.Word(l.Source), l.Author,
            string.Join(", ", l.Segments.Select(s => s.LabelValue > 0 ? $"{s.SegmentLabel}→{s.LabelValue}" : $"{s.SegmentLabel}→?")),
            Formatting.Number(l.PaintedSlices.Count), l.RejectionReason]));

    internal static object ToJson(Label l) => new
                {
                    id = l.Id,
                    sopInstanceUid = l.SopInstanceUid,
                    orthancInstanceId = l.OrthancInstanceId,
                    caseKey = l.CaseKey,
                    source = Formatting.Word(l.Source),
                    author = l.Author,
                    verdict = Formatting.Word(l.Verdict),
                    rejectionReason = l.RejectionReason,
                    isCurrent = l.IsCurrent,
                    paintedSlices = l.PaintedSlices.ToArray(),
                    segments = l.Segments.Select(s => new
                    {
                        segmentNumber = s.SegmentNumber, segmentLabel = s.SegmentLabel, labelValue = s.LabelValue, labelName = s.LabelName,
                        match = Formatting.Word(s.Match), paintedFrames = s.PaintedFrames,
                    }),
                    createTime = Formatting.TimeValue(l.CreateTime),
                    acceptTime = Formatting.TimeValue(l.AcceptTime),
                };

    private static Command ShowCommand()
    {
        var id = new Argument<long>("label") { Description = "The label's id (labels list)" };
        var command = new Command("show", "Show one label: its verdict, reason and segment mapping") { id };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            Show(output, (await worker.Labels.GetLabelAsync(new GetLabelRequest { Id = parseResult.GetValue(id) }, deadline: DateTime.UtcNow + Deadline,
                cancellationToken: ct)).Label);
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg labels show 42");
    }

    private static Command AcceptCommand()
    {
        var id = new Argument<long>("label") { Description = "The label's id (labels list)" };
        var command = new Command("accept", "Accept a model's proposed label: it becomes training data and the case's current label") { id };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            Show(output, (await worker.Labels.AcceptLabelAsync(new AcceptLabelRequest { Id = parseResult.GetValue(id) }, deadline: DateTime.UtcNow + Deadline,
                cancellationToken: ct)).Label);
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg labels accept 42");
    }

    private static Command RejectCommand()
    {
        var id = new Argument<long>("label") { Description = "The label's id (labels list)" };
        var reason = new Option<string>("--reason") { Description = "Why, in words the next person can act on", Required = true };
        var command = new Command("reject", "Reject a label: it is no longer training data") { id, reason };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            Show(output, (await worker.Labels.RejectLabelAsync(new RejectLabelRequest { Id = parseResult.GetValue(id), Reason = parseResult.GetValue(reason)! },
                deadline: DateTime.UtcNow + Deadline, cancellationToken: ct)).Label);
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg labels reject 42 --reason \"tumor boundary misses the caudate lobe\"");
    }

    private static Command ImportCommand()
    {
        var caseKey = new Option<string>("--case") { Description = "The case the label map was drawn on", Required = true };
        var author = new Option<string?>("--author") { Description = "Who drew it" };
        var file = new Argument<FileInfo>("labels.nii.gz") { Description = "NIfTI label map on the case's grid, values as the workflow's labels" };
        var command = new Command("import", "Import a label map made in another tool: checked against the case's grid, stored in Orthanc as a SEG, recorded as an accepted label")
        {
            caseKey, author, file,
        };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var path = parseResult.GetValue(file)!;
            byte[] bytes;
            try
            {
                bytes = await File.ReadAllBytesAsync(path.FullName, ct);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new CliException($"labels import: cannot read {path.FullName}: {e.Message}", ExitCodes.Usage);
            }
            var label = (await worker.Labels.ImportLabelAsync(new ImportLabelRequest
            {
                CaseKey = parseResult.GetValue(caseKey)!,
                Nifti = Google.Protobuf.ByteString.CopyFrom(bytes),
                Author = parseResult.GetValue(author) ?? "",
            }, deadline: DateTime.UtcNow + TimeSpan.FromMinutes(5), cancellationToken: ct)).Label;
            Show(output, label);
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg labels import --case liverct_k3m9x2ab labels.nii.gz",
            "orthancseg labels import --case liverct_k3m9x2ab --author Doe^Jane labels.nii.gz");
    }

    private static void Show(Output.ConsoleOutput output, Label label)
    {
        if (output.Json)
        {
            output.WriteJson(ToJson(label));
        }
        else
        {
            Table(output, [label]);
        }
    }

    private static Command PendingCommand()
    {
        var command = new Command("pending", "List segmentations that reference no case yet, and why");
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var request = new ListPendingSegmentationsRequest { PageSize = 1000 };
            var all = await Paging.AllAsync(async token =>
            {
                request.PageToken = token;
                var page = await worker.Labels.ListPendingSegmentationsAsync(request, deadline: DateTime.UtcNow + Deadline, cancellationToken: ct);
                return (page.PendingSegmentations.AsEnumerable(), page.NextPageToken);
            });
            if (output.Json)
            {
                output.WriteJson(all.Select(p => new
                {
                    sopInstanceUid = p.SopInstanceUid, orthancInstanceId = p.OrthancInstanceId,
                    referencedSeriesInstanceUids = p.ReferencedSeriesInstanceUids.ToArray(), reason = p.Reason, createTime = Formatting.TimeValue(p.CreateTime),
                }));
            }
            else
            {
                output.Table(["SEG SOP INSTANCE UID", "ORTHANC ID", "SINCE", "REASON"], all.Select(p => (IReadOnlyList<string>)[
                    p.SopInstanceUid, p.OrthancInstanceId, Formatting.Time(p.CreateTime), p.Reason]));
            }
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg labels pending",
            "orthancseg labels pending --json");
    }
}
