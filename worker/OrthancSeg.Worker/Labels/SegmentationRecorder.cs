using OrthancSeg.Dicom;
using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Worker.Cases;
using OrthancSeg.Worker.Orthanc;
using OrthancSeg.Worker.Persistence;
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
        SegmentationDescription? seg = null;
        DicomFile? file = null;
        string? unreadable = null;
        try
        {
            // Compressed SEGs come back transcoded by Orthanc: the worker carries no JPEG codecs.
            (file, _) = await instances.FetchAsync(id, cancellationToken);
            seg = SegmentationReader.Describe(file);
        }
        catch (OrthancException e) when (e.IsNotFound)
        {
            LogGone(logger, id);
            return;
        }
        catch (DicomException e)
        {
            // Whatever is wrong with the file is the file's: it becomes the verdict, not a failed job.
            unreadable = e.Message;
        }

        string sopInstanceUid;
        IReadOnlyList<string> referencedSeries;
        IReadOnlyList<string> referencedInstances;
        if (seg is not null)
        {
            sopInstanceUid = seg.SopInstanceUid;
            referencedSeries = StoredText.References(seg.ReferencedSeriesInstanceUids);
            referencedInstances = StoredText.References(seg.ReferencedSopInstanceUids);
        }
        else
        {
            // Orthanc parsed the file to store it; its view of the tags still says which SEG this is and what it references.
            OrthancTags tags;
            try
            {
                tags = await orthanc.GetInstanceTagsAsync(id, cancellationToken);
            }
            catch (OrthancException e) when (e.IsNotFound)
            {
                LogGone(logger, id);
                return;
            }
            if (tags.Text("SOPClassUID") is { } sopClass && !SopClasses.IsSegmentation(sopClass))
            {
                LogNotSegmentation(logger, id, StoredText.Clean(sopClass, StoredText.NameLength));
                return;
            }
            // Orthanc stores nothing without a SOPInstanceUID; its id stands in should its JSON ever lack one.
            sopInstanceUid = tags.Text("SOPInstanceUID") ?? $"orthanc:{id}";
            referencedSeries = StoredText.References(tags.Items("ReferencedSeriesSequence").Select(item => item.Text("SeriesInstanceUID")).OfType<string>());
            referencedInstances = [];
        }
        sopInstanceUid = StoredText.Identifier(sopInstanceUid);
        unreadable = StoredText.CleanOrNull(unreadable, StoredText.ReasonLength);

        var targets = await cases.FindByReferencesAsync(referencedSeries, referencedInstances, cancellationToken);
        if (targets.Count == 0)
        {
            var reason = referencedSeries.Count == 0 && referencedInstances.Count == 0
                ? $"the SEG references no series{(unreadable is null ? "" : $" and cannot be read ({unreadable})")}"
                : $"it references series {string.Join(", ", referencedSeries.Take(10).DefaultIfEmpty("(by instance only)"))}, which is not a case of any workflow (yet): "
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
            if (await labels.IsWorkerWrittenAsync(target.Id, sopInstanceUid, cancellationToken))
            {
                // The worker stored this SEG itself and recorded it then (a model's prediction, an import): the same label, not a person's.
                LogOwn(logger, sopInstanceUid, target.CaseKey);
                continue;
            }
            var workflow = byId[target.WorkflowId];
            var assessment = seg is null
                ? new LabelAssessment(false, $"the file cannot be read as a DICOM SEG: {unreadable}", "manual", [], [])
                : LabelValidator.Assess(seg, file!, target.Grid, workflow.Mapper(), workflow.Name);
            await labels.UpsertAsync(target.Id, sopInstanceUid, id, seg?.ContentCreatorName, seg?.ContentTime, assessment, cancellationToken);
            if (assessment.Accepted)
            {
                LogAccepted(logger, sopInstanceUid, target.CaseKey, assessment.PaintedSlices.Count);
            }
            else
            {
                // The reason quotes the file's own text, which must not reach the log raw either.
                var reason = StoredText.Clean(assessment.RejectionReason!, StoredText.ReasonLength);
                LogRejected(logger, sopInstanceUid, target.CaseKey, reason);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Instance {OrthancInstanceId} is no longer in Orthanc; nothing to record")]
    private static partial void LogGone(ILogger logger, string orthancInstanceId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Instance {OrthancInstanceId} was announced as a segmentation but has SOP Class {SopClassUid}; ignored")]
    private static partial void LogNotSegmentation(ILogger logger, string orthancInstanceId, string sopClassUid);

    [LoggerMessage(Level = LogLevel.Information, Message = "SEG {OrthancInstanceId} ({SopInstanceUid}) waits for its case: {Reason}")]
    private static partial void LogPending(ILogger logger, string orthancInstanceId, string sopInstanceUid, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "SEG {SopInstanceUid} of case {CaseKey} is a label the worker stored and recorded itself")]
    private static partial void LogOwn(ILogger logger, string sopInstanceUid, string caseKey);

    [LoggerMessage(Level = LogLevel.Information, Message = "Accepted label {SopInstanceUid} of case {CaseKey} ({PaintedSlices} painted slices)")]
    private static partial void LogAccepted(ILogger logger, string sopInstanceUid, string caseKey, int paintedSlices);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rejected label {SopInstanceUid} of case {CaseKey}: {Reason}")]
    private static partial void LogRejected(ILogger logger, string sopInstanceUid, string caseKey, string reason);
}
