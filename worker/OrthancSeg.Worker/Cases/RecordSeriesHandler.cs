using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Events;
using OrthancSeg.Worker.Jobs;

namespace OrthancSeg.Worker.Cases;

/// <summary>The "series" job: a stable (or newly seen) series becomes a case of every workflow it fits.</summary>
internal sealed class RecordSeriesHandler(SeriesRecorder recorder, IOptions<RecordingOptions> options) : JobHandler<SeriesJob>, IJobKind
{
    public static string Kind => RecordingJobs.SeriesKind;

    public static string Pool => RecordingJobs.Pool;

    protected override Task RunAsync(SeriesJob payload, JobAttempt attempt, CancellationToken cancellationToken) =>
        recorder.RecordAsync(payload, options.Value.NewSeriesCheckDelay, cancellationToken);
}
