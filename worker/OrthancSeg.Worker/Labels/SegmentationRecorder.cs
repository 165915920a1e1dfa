using System.Net;
using System.Text.Json;
using OrthancSeg.Dicom;
using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Dicom.Volumes;
using OrthancSeg.Worker.Cases;
using OrthancSeg.Worker.Events;
using OrthancSeg.Worker.Orthanc;
using OrthancSeg.Worker.Workflows;

namespace OrthancSeg.Worker.Labels;

/// <summary>
/// The segmentation job: reads a SEG from Orthanc, finds the cases of the series it references and records
/// it as a label of each, accepted or rejected with a reason. A SEG whose series is no case yet waits in
/// pending_segmentations. A file the worker cannot read becomes a rejected label saying why, not a failed job.
/// </summary>
internal sealed partial class SegmentationRecorder(
    OrthancClient orthanc, OrthancInstances instances, WorkflowStore workflows, CaseStore cases, LabelStore labels, ILogger<SegmentationRecorder> logger)
{
    public async Task RecordAsync(SegmentationJob job, CancellationToken cancellationToken)
    {
        var id = job.OrthancInstanceId;
        SegmentationContent? content = null;
        DicomFile? file = null;
        string? unreadable = null;
        try
        {
            // Compressed SEGs come back transcoded by Orthanc: the worker carries no JPEG codecs.
            (file, _) = await instances.FetchAsync(id, cancellationToken);
            content = SegmentationContent.Parse(file);
        }
        catch (OrthancException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            LogGone(logger, id);
            return;
        }
        catch (Exception e) when (e is DicomException or ArgumentException or InvalidOperationException or IndexOutOfRangeException or OverflowException or FormatException)
        {
            unreadable = e.Message;
        }

        string sopInstanceUid;
        IReadOnlyList<string> referencedSeries;
        List<string> referencedInstances;
        if (content is not null)
        {
            sopInstanceUid = content.SopInstanceUid;
            referencedSeries = content.ReferencedSeriesInstanceUids;
            referencedInstances = content.Frames.Select(f => f.ReferencedSopInstanceUid).OfType<string>().Concat(content.ReferencedSopInstanceUids).Distinct().ToList();
        }
        else
        {
            // Orthanc parsed the file to store it; its view of the tags still says which SEG this is and what it references.
            using var tags = await orthanc.GetJsonAsync($"instances/{id}/simplified-tags", cancellationToken);
            var root = tags.RootElement;
            if (root.Text("SOPClassUID") is { } sopClass && !SopClasses.IsSegmentation(sopClass))
            {
                LogNotSegmentation(logger, id, sopClass);
                return;
            }
            sopInstanceUid = root.Text("SOPInstanceUID") ?? throw new InvalidOperationException($"Orthanc instance {id} has no SOPInstanceUID");
            referencedSeries = root.TryGetProperty("ReferencedSeriesSequence", out var sequence) && sequence.ValueKind == JsonValueKind.Array
                ? sequence.EnumerateArray().Select(item => item.Text("SeriesInstanceUID")).OfType<string>().ToList()
                : [];
            referencedInstances = [];
        }

        var targets = await cases.FindByReferencesAsync(referencedSeries, referencedInstances, cancellationToken);
        if (targets.Count == 0)
        {
            var reason = referencedSeries.Count == 0 && referencedInstances.Count == 0
                ? $"the SEG references no series{(unreadable is null ? "" : $" and cannot be read ({unreadable})")}"
                : $"it references series {string.Join(", ", referencedSeries.DefaultIfEmpty("(by instance only)"))}, which is not a case of any workflow (yet): "
                  + "it is not stable yet, matches no workflow, or is not in Orthanc";
            await labels.SetPendingAsync(sopInstanceUid, id, referencedSeries, reason, cancellationToken);
            // A series job that created the case after the lookup above read the pending SEGs before this one was
            // written, so it will not come back for it: look again now that it is written (one of the two always sees
            // the other's write). Recording it as a label removes the pending row.
            targets = await cases.FindByReferencesAsync(referencedSeries, referencedInstances, cancellationToken);
            if (targets.Count == 0)
            {
                LogPending(logger, id, sopInstanceUid, reason);
                return;
            }
        }

        var byId = (await workflows.ListAllAsync(cancellationToken)).ToDictionary(w => w.Id);
        foreach (var target in targets)
        {
            var workflow = byId[target.WorkflowId];
            var assessment = content is null
                ? new LabelAssessment(false, $"the file cannot be read as a DICOM SEG: {unreadable}", "manual", [], [])
                : LabelValidator.Assess(content, target.Grid, workflow.Mapper(), workflow.Name);
            if (assessment.Accepted)
            {
                assessment = CrossCheck(file!, target, assessment);
            }
            await labels.UpsertAsync(target.Id, sopInstanceUid, id, content?.Author, content?.ContentTime, assessment, cancellationToken);
            if (assessment.Accepted)
            {
                LogAccepted(logger, sopInstanceUid, target.CaseKey, assessment.PaintedSlices.Count);
            }
            else
            {
                LogRejected(logger, sopInstanceUid, target.CaseKey, assessment.RejectionReason!);
            }
        }
    }

    /// <summary>
    /// Rasterises the accepted SEG with the reader dataset exports use, onto the case's grid, so a label accepted here
    /// is one the export can read; anything that reader refuses (frames off the grid, odd orientation) rejects the label.
    /// </summary>
    private static LabelAssessment CrossCheck(DicomFile file, CaseRecord target, LabelAssessment assessment)
    {
        var g = target.Geometry!;
        var slices = Enumerable.Range(0, g.Slices).Select(k => new Vector3D(g.Origin[0], g.Origin[1], g.Origin[2]) + (g.Normal * (k * g.Spacing[2]))).ToList();
        var grid = new SeriesGrid(
            new VolumeGeometry(g.Columns, g.Rows, g.Slices, new Vector3D(g.Spacing[0], g.Spacing[1], g.Spacing[2] > 0 ? g.Spacing[2] : 1),
                slices[0], g.RowDirection, g.ColumnDirection, g.Normal),
            target.SopInstanceUids, slices, target.FrameOfReferenceUid ?? "", target.StudyInstanceUid, target.SeriesInstanceUid);
        var mapping = new OrthancSeg.Dicom.Segmentation.SegmentMapping(assessment.Segments
            .GroupBy(s => s.SegmentLabel.Trim(), StringComparer.OrdinalIgnoreCase)
            .Select(group => new KeyValuePair<string, byte>(group.Key, (byte)group.First().LabelValue)));
        try
        {
            var result = SegmentationReader.Read(file, grid, mapping);
            return assessment with { PaintedSlices = [.. result.Segments.SelectMany(s => s.Slices).Distinct().Order()] };
        }
        catch (DicomException e)
        {
            return assessment with { Accepted = false, RejectionReason = $"the SEG does not map onto the series: {e.Message}" };
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Instance {OrthancInstanceId} is no longer in Orthanc; nothing to record")]
    private static partial void LogGone(ILogger logger, string orthancInstanceId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Instance {OrthancInstanceId} was announced as a segmentation but has SOP Class {SopClassUid}; ignored")]
    private static partial void LogNotSegmentation(ILogger logger, string orthancInstanceId, string sopClassUid);

    [LoggerMessage(Level = LogLevel.Information, Message = "SEG {OrthancInstanceId} ({SopInstanceUid}) waits for its case: {Reason}")]
    private static partial void LogPending(ILogger logger, string orthancInstanceId, string sopInstanceUid, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Accepted label {SopInstanceUid} of case {CaseKey} ({PaintedSlices} painted slices)")]
    private static partial void LogAccepted(ILogger logger, string sopInstanceUid, string caseKey, int paintedSlices);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rejected label {SopInstanceUid} of case {CaseKey}: {Reason}")]
    private static partial void LogRejected(ILogger logger, string sopInstanceUid, string caseKey, string reason);
}
