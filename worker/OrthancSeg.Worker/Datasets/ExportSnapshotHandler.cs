using System.Globalization;
using OrthancSeg.Worker.Jobs;

namespace OrthancSeg.Worker.Datasets;

/// <summary>The payload of an export job: which snapshot to build.</summary>
internal sealed record SnapshotJob(long SnapshotId);

/// <summary>
/// The "snapshot" job: exports one snapshot (<see cref="SnapshotExporter"/>), one per worker at a time (an export already runs several
/// series in parallel). The snapshot row follows the job: a failed attempt says it will be retried, a dead or cancelled job marks the
/// snapshot failed or cancelled, and a refusal (nothing to export, a dataset nnU-Net would reject) fails the snapshot for good while
/// the job itself succeeds: it reached a verdict, and retrying cannot change it.
/// </summary>
internal sealed partial class ExportSnapshotHandler(SnapshotStore snapshots, SnapshotExporter exporter, ILogger<ExportSnapshotHandler> logger)
    : JobHandler<SnapshotJob>, IJobKind
{
    public static string Kind => "snapshot";

    public static string Pool => "exports";

    /// <summary>Queues the export of a snapshot; the key is the snapshot's number, so queuing it twice is one job.</summary>
    public static Task<EnqueuedJob> EnqueueAsync(JobQueue queue, long snapshotId, int maxAttempts, CancellationToken cancellationToken) =>
        queue.EnqueueAsync(Kind, string.Create(CultureInfo.InvariantCulture, $"snapshot-{snapshotId}"), new SnapshotJob(snapshotId), maxAttempts,
            cancellationToken: cancellationToken);

    protected override async Task RunAsync(SnapshotJob payload, JobAttempt attempt, CancellationToken cancellationToken)
    {
        try
        {
            await exporter.RunAsync(payload.SnapshotId, attempt, cancellationToken);
        }
        catch (SnapshotRefusedException e)
        {
            LogRefused(logger, payload.SnapshotId, e.Message);
            await snapshots.FailAsync(payload.SnapshotId, e.Message, e.ReportJson, final: true, cancellationToken);
        }
    }

    protected override Task OnAttemptFailedAsync(SnapshotJob payload, JobAttempt attempt, string error, DateTimeOffset retryAt, CancellationToken cancellationToken) =>
        snapshots.FailAsync(payload.SnapshotId, error, null, final: false, cancellationToken);

    protected override async Task OnEndedAsync(SnapshotJob payload, JobAttempt attempt, JobEnding ending, CancellationToken cancellationToken)
    {
        if (ending.Cancelled)
        {
            await snapshots.CancelAsync(payload.SnapshotId, ending.Error, cancellationToken);
        }
        else
        {
            await snapshots.FailAsync(payload.SnapshotId, ending.Error, null, final: true, cancellationToken);
        }
        // A killed attempt leaves its scratch folder; the job will not run again to remove it.
        if (await snapshots.FindAsync(payload.SnapshotId, cancellationToken) is { } snapshot)
        {
            DatasetFolder.At(snapshot.DatasetPath).RemoveScratch(payload.SnapshotId);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Snapshot {SnapshotId} failed: {Reason}")]
    private static partial void LogRefused(ILogger logger, long snapshotId, string reason);
}
