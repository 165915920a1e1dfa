using OrthancSeg.Worker.Jobs;
using OrthancSeg.Dicom.Volumes;
using OrthancSeg.Worker.Inference;
using OrthancSeg.Worker.Labels;
using OrthancSeg.Worker.Orthanc;
using OrthancSeg.Worker.Workflows;

namespace OrthancSeg.Worker.Cases;

/// <summary>
/// The series job: reads a series from Orthanc, matches it against every active workflow and records
/// it as a case of each that admits it (again when it grew). SEGs that were waiting for it are re-checked.
/// </summary>
internal sealed partial class SeriesRecorder(
    OrthancClient orthanc, WorkflowStore workflows, CaseStore cases, LabelStore labels, JobQueue queue, InferenceStarter inference, ILogger<SeriesRecorder> logger)
{
    /// <summary>How often a series seen as new is re-checked for stability before the worker stops waiting.</summary>
    private const int MaxStabilityRounds = 30;

    public async Task RecordAsync(SeriesJob job, TimeSpan recheckDelay, CancellationToken cancellationToken)
    {
        OrthancSeries series;
        try
        {
            series = await orthanc.GetSeriesAsync(job.OrthancSeriesId, cancellationToken);
        }
        catch (OrthancException e) when (e.IsNotFound)
        {
            LogSeriesGone(logger, job.OrthancSeriesId);
            return;
        }
        var main = series.MainDicomTags;
        var modality = main.Text("Modality");
        var instanceIds = series.Instances;

        if (string.Equals(modality, "SEG", StringComparison.OrdinalIgnoreCase))
        {
            // A SEG series is no case; its instances are labels. Enqueueing them here also covers a missed NewInstance.
            foreach (var instance in instanceIds)
            {
                await RecordSegmentationHandler.EnqueueAsync(queue, instance, null, cancellationToken);
            }
            return;
        }
        if (job.RequireStable && series.IsStable == false)
        {
            if (job.Round < MaxStabilityRounds)
            {
                await RecordSeriesHandler.EnqueueNewAsync(queue, job.OrthancSeriesId, job.NewSeq, job.Round + 1, DateTimeOffset.UtcNow + recheckDelay, cancellationToken);
            }
            return;
        }

        var facts = new SeriesFacts(modality, main.Text("SeriesDescription"), main.Text("BodyPartExamined"));
        var matching = (await workflows.ListActiveAsync(cancellationToken)).Where(w => w.Selection.Matches(facts)).ToList();
        if (matching.Count == 0)
        {
            LogNoWorkflow(logger, job.OrthancSeriesId, modality);
            return;
        }

        var instanceTags = await orthanc.GetSeriesInstanceTagsAsync(job.OrthancSeriesId, cancellationToken);
        var headers = new List<SliceHeader>();
        string? studyUid = null;
        string? seriesUid = main.Text("SeriesInstanceUID");
        foreach (var tags in instanceTags.Values)
        {
            studyUid ??= tags.Text("StudyInstanceUID");
            seriesUid ??= tags.Text("SeriesInstanceUID");
            if (tags.Text("SOPInstanceUID") is not { } sopUid)
            {
                continue;
            }
            headers.Add(new SliceHeader(sopUid,
                tags.Numbers("ImagePositionPatient") is [var x, var y, var z] ? new Vector3D(x, y, z) : null,
                tags.Numbers("ImageOrientationPatient"),
                tags.Integer("Rows") ?? 0, tags.Integer("Columns") ?? 0,
                tags.Numbers("PixelSpacing"), tags.Text("FrameOfReferenceUID")));
        }
        if (seriesUid is null || studyUid is null)
        {
            throw new InvalidOperationException($"Orthanc series {job.OrthancSeriesId} has no SeriesInstanceUID or StudyInstanceUID");
        }
        var snapshot = new SeriesSnapshot(job.OrthancSeriesId, series.ParentStudy, studyUid, seriesUid,
            modality, facts.SeriesDescription, facts.BodyPart, headers.Count, SeriesGeometry.Order(headers));

        foreach (var workflow in matching)
        {
            var (caseKey, created, changed) = await cases.UpsertAsync(workflow.Id, CaseKey.For(workflow.CaseKeyPrefix, workflow.CaseKeySalt, seriesUid), snapshot, cancellationToken);
            if (created)
            {
                LogCaseRecorded(logger, caseKey, workflow.Name, seriesUid, headers.Count);
                // New cases only: cases recorded again (a catch-up, a series that grew) are predicted on demand (inference start).
                await inference.AutoInferAsync(workflow, caseKey, cases, cancellationToken);
            }
            else if (changed)
            {
                // The series grew (or its geometry changed): its labels are judged again against the new slices,
                // e.g. a SEG that referenced slices which had not arrived yet.
                LogCaseUpdated(logger, caseKey, seriesUid, headers.Count);
                foreach (var label in await labels.LabelInstancesOfCaseAsync(caseKey, cancellationToken))
                {
                    await RecordSegmentationHandler.EnqueueAsync(queue, label, $"case-{caseKey}-{headers.Count}", cancellationToken);
                }
            }
        }
        foreach (var pending in await labels.PendingForSeriesAsync(seriesUid, cancellationToken))
        {
            await RecordSegmentationHandler.EnqueueAsync(queue, pending, $"series-{job.OrthancSeriesId}-{headers.Count}", cancellationToken);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Updated case {CaseKey} for series {SeriesInstanceUid}: now {InstanceCount} instances")]
    private static partial void LogCaseUpdated(ILogger logger, string caseKey, string seriesInstanceUid, int instanceCount);

    [LoggerMessage(Level = LogLevel.Information, Message = "Series {OrthancSeriesId} is no longer in Orthanc; nothing to record")]
    private static partial void LogSeriesGone(ILogger logger, string orthancSeriesId);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Series {OrthancSeriesId} ({Modality}) matches no active workflow")]
    private static partial void LogNoWorkflow(ILogger logger, string orthancSeriesId, string? modality);

    [LoggerMessage(Level = LogLevel.Information, Message = "Recorded case {CaseKey} of workflow {Workflow} for series {SeriesInstanceUid} ({InstanceCount} instances)")]
    private static partial void LogCaseRecorded(ILogger logger, string caseKey, string workflow, string seriesInstanceUid, int instanceCount);
}
