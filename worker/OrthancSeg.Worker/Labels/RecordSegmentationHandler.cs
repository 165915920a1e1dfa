using OrthancSeg.Worker.Cases;
using OrthancSeg.Worker.Jobs;

namespace OrthancSeg.Worker.Labels;

/// <summary>The payload of a "segmentation" job.</summary>
internal sealed record SegmentationJob(string OrthancInstanceId);

/// <summary>The "segmentation" job: a stored SEG becomes a label of its case (accepted or rejected with a reason), or a pending one.</summary>
internal sealed class RecordSegmentationHandler(SegmentationRecorder recorder) : JobHandler<SegmentationJob>, IJobKind
{
    public static string Kind => "segmentation";

    public static string Pool => RecordingOptions.Pool;

    /// <summary>A stored SEG instance; <paramref name="reason"/> distinguishes a re-check when its case appeared.</summary>
    public static Task<EnqueuedJob> EnqueueAsync(JobQueue queue, string orthancInstanceId, string? reason, CancellationToken cancellationToken) =>
        queue.EnqueueAsync(Kind, reason is null ? orthancInstanceId : $"{orthancInstanceId}@{reason}",
            new SegmentationJob(orthancInstanceId), reviveDead: true, cancellationToken: cancellationToken);

    protected override Task RunAsync(SegmentationJob payload, JobAttempt attempt, CancellationToken cancellationToken) =>
        recorder.RecordAsync(payload, cancellationToken);
}
