using OrthancSeg.Worker.Jobs;

namespace OrthancSeg.Worker.Events;

/// <summary>
/// The jobs that record series and segmentations, and their idempotency keys. Keys are what makes a
/// repeated event harmless: the same change (push or catch-up) gives the same key, so one job.
/// A series key carries the change sequence because a series that grows is announced again with a new one. Seeing the same
/// change again (catch-up after an outage, a push) revives a recording job that had become a dead letter.
/// </summary>
internal sealed class RecordingJobs(JobQueue queue)
{
    public const string SeriesKind = "series";
    public const string SegmentationKind = "segmentation";
    public const string BackfillKind = "backfill";

    /// <summary>The pool of job slots the recording kinds share (OrthancSeg:Records:Concurrency).</summary>
    public const string Pool = "recording";

    /// <summary>A stable series; <paramref name="changeSeq"/> 0 means "pushed without a sequence number".</summary>
    public Task<EnqueuedJob> SeriesAsync(string orthancSeriesId, long changeSeq, CancellationToken cancellationToken) =>
        queue.EnqueueAsync(SeriesKind, changeSeq > 0 ? $"{orthancSeriesId}@{changeSeq}" : $"{orthancSeriesId}@push",
            new SeriesJob(orthancSeriesId, RequireStable: false), reviveDead: true, cancellationToken: cancellationToken);

    /// <summary>
    /// A series seen as new in the change log: checked later, and recorded only once Orthanc calls it stable. This is what
    /// catches series whose StableSeries event was never emitted because Orthanc restarted first (stability is kept in memory).
    /// </summary>
    public Task<EnqueuedJob> NewSeriesAsync(string orthancSeriesId, long changeSeq, int round, DateTimeOffset notBefore, CancellationToken cancellationToken) =>
        queue.EnqueueAsync(SeriesKind, $"{orthancSeriesId}@new{changeSeq}.{round}",
            new SeriesJob(orthancSeriesId, RequireStable: true, NewSeq: changeSeq, Round: round), notBefore: notBefore, reviveDead: true,
            cancellationToken: cancellationToken);

    /// <summary>A series found by a workflow's backfill.</summary>
    public Task<EnqueuedJob> BackfillSeriesAsync(string orthancSeriesId, string backfillKey, CancellationToken cancellationToken) =>
        queue.EnqueueAsync(SeriesKind, $"{orthancSeriesId}@{backfillKey}", new SeriesJob(orthancSeriesId, RequireStable: false), reviveDead: true,
            cancellationToken: cancellationToken);

    /// <summary>A stored SEG instance; <paramref name="reason"/> distinguishes a re-check when its case appeared.</summary>
    public Task<EnqueuedJob> SegmentationAsync(string orthancInstanceId, string? reason, CancellationToken cancellationToken) =>
        queue.EnqueueAsync(SegmentationKind, reason is null ? orthancInstanceId : $"{orthancInstanceId}@{reason}",
            new SegmentationJob(orthancInstanceId), reviveDead: true, cancellationToken: cancellationToken);

    /// <summary>A scan of every series in Orthanc for a workflow created or resumed at <paramref name="at"/>.</summary>
    public Task<EnqueuedJob> BackfillAsync(string workflowName, DateTimeOffset at, CancellationToken cancellationToken) =>
        queue.EnqueueAsync(BackfillKind, $"{workflowName}@{at.ToUnixTimeMilliseconds()}", new BackfillJob(workflowName, at.ToUnixTimeMilliseconds()),
            cancellationToken: cancellationToken);
}

internal sealed record SeriesJob(string OrthancSeriesId, bool RequireStable, long NewSeq = 0, int Round = 0);

internal sealed record SegmentationJob(string OrthancInstanceId);

internal sealed record BackfillJob(string Workflow, long At);
