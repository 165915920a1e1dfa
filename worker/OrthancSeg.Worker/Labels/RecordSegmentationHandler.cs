using OrthancSeg.Worker.Events;
using OrthancSeg.Worker.Jobs;

namespace OrthancSeg.Worker.Labels;

/// <summary>The "segmentation" job: a stored SEG becomes a label of its case (accepted or rejected with a reason), or a pending one.</summary>
internal sealed class RecordSegmentationHandler(SegmentationRecorder recorder) : JobHandler<SegmentationJob>, IJobKind
{
    public static string Kind => RecordingJobs.SegmentationKind;

    public static string Pool => RecordingJobs.Pool;

    protected override Task RunAsync(SegmentationJob payload, JobAttempt attempt, CancellationToken cancellationToken) =>
        recorder.RecordAsync(payload, cancellationToken);
}
