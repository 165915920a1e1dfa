using System.CommandLine;
using OrthancSeg.Cli.Connection;
using OrthancSeg.Contracts.V1;

namespace OrthancSeg.Cli.Commands;

/// <summary>`orthancseg labels list --case KEY` and `orthancseg labels pending`.</summary>
internal static class LabelsCommand
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    public static Command Create()
    {
        var command = new Command("labels", "List the labels (segmentations) of a case, or segmentations still waiting for their case");
        command.Subcommands.Add(ListCommand());
        command.Subcommands.Add(PendingCommand());
        return command;
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
                var page = await worker.Admin.ListLabelsAsync(request, deadline: DateTime.UtcNow + Deadline, cancellationToken: ct);
                return (page.Labels.AsEnumerable(), page.NextPageToken);
            });
            if (output.Json)
            {
                output.WriteJson(all.Select(l => new
                {
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
                }));
            }
            else
            {
                output.Table(["SEG SOP INSTANCE UID", "CURRENT", "VERDICT", "SOURCE", "AUTHOR", "SEGMENTS", "SLICES", "REASON"], all.Select(l => (IReadOnlyList<string>)[
                    l.SopInstanceUid, l.IsCurrent ? "*" : "", Formatting.Word(l.Verdict), Formatting.Word(l.Source), l.Author,
                    string.Join(", ", l.Segments.Select(s => s.LabelValue > 0 ? $"{s.SegmentLabel}→{s.LabelValue}" : $"{s.SegmentLabel}→?")),
                    Formatting.Number(l.PaintedSlices.Count), l.RejectionReason]));
            }
            return ExitCodes.Ok;
        }, cancellationToken));
        return command;
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
                var page = await worker.Admin.ListPendingSegmentationsAsync(request, deadline: DateTime.UtcNow + Deadline, cancellationToken: ct);
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
        return command;
    }
}
