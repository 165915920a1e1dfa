using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Jobs;

namespace OrthancSeg.Worker.Cases;

/// <summary>The payload of a "series" job; <see cref="RequireStable"/> for a series seen only as new (checked, recorded once stable).</summary>
internal sealed record SeriesJob(string OrthancSeriesId, bool RequireStable, long NewSeq = 0, int Round = 0);

/// <summary>
/// The "series" job: a stable (or newly seen) series becomes a case of every workflow it fits. Keys are what makes a repeated event
/// harmless: the same change (push or catch-up) gives the same key, so one job; a series key carries the change sequence because a
/// series that grows is announced again with a new one. Seeing the same change again revives a job that had become a dead letter.
/// </summary>
internal sealed class RecordSeriesHandler(SeriesRecorder recorder, IOptions<RecordingOptions> options) : JobHandler<SeriesJob>, IJobKind
{
    public static string Kind => "series";

    public static string Pool => RecordingOptions.Pool;

    /// <summary>A stable series; <paramref name="changeSeq"/> 0 means "pushed without a sequence number".</summary>
    public static Task<EnqueuedJob> EnqueueAsync(JobQueue queue, string orthancSeriesId, long changeSeq, CancellationToken cancellationToken) =>
        queue.EnqueueAsync(Kind, changeSeq > 0 ? $"{orthancSeriesId}@{changeSeq}" : $"{orthancSeriesId}@push",
            new SeriesJob(orthancSeriesId, RequireStable: false), reviveDead: true, cancellationToken: cancellationToken);

    /// <summary>
    /// A series seen as new in the change log: checked later, and recorded only once Orthanc calls it stable. This is what
    /// catches series whose StableSeries event was never emitted because Orthanc restarted first (stability is kept in memory).
    /// </summary>
    public static Task<EnqueuedJob> EnqueueNewAsync(JobQueue queue, string orthancSeriesId, long changeSeq, int round, DateTimeOffset notBefore,
        CancellationToken cancellationToken) =>
        queue.EnqueueAsync(Kind, $"{orthancSeriesId}@new{changeSeq}.{round}",
            new SeriesJob(orthancSeriesId, RequireStable: true, NewSeq: changeSeq, Round: round), notBefore: notBefore, reviveDead: true,
            cancellationToken: cancellationToken);

    /// <summary>A series found by a workflow's backfill.</summary>
    public static Task<EnqueuedJob> EnqueueBackfilledAsync(JobQueue queue, string orthancSeriesId, string backfillKey, CancellationToken cancellationToken) =>
        queue.EnqueueAsync(Kind, $"{orthancSeriesId}@{backfillKey}", new SeriesJob(orthancSeriesId, RequireStable: false), reviveDead: true,
            cancellationToken: cancellationToken);

    protected override Task RunAsync(SeriesJob payload, JobAttempt attempt, CancellationToken cancellationToken) =>
        recorder.RecordAsync(payload, options.Value.NewSeriesCheckDelay, cancellationToken);
}
