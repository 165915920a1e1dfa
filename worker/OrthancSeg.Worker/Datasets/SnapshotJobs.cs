using System.Globalization;
using System.Text.Json;
using OrthancSeg.Worker.Jobs;

namespace OrthancSeg.Worker.Datasets;

/// <summary>The export job of a snapshot: one per snapshot, keyed on its number, so queuing it twice is one job.</summary>
internal static class SnapshotJobs
{
    public static Task<EnqueuedJob> EnqueueAsync(JobQueue queue, long snapshotId, int maxAttempts, CancellationToken cancellationToken) =>
        queue.EnqueueAsync(SnapshotJobRunner.Kind, string.Create(CultureInfo.InvariantCulture, $"snapshot-{snapshotId}"),
            JsonSerializer.Serialize(new SnapshotJob(snapshotId), SnapshotExporter.ReportJson), maxAttempts, cancellationToken: cancellationToken);

    public static long Read(ClaimedJob job) =>
        (JsonSerializer.Deserialize<SnapshotJob>(job.PayloadJson, SnapshotExporter.ReportJson) ?? throw new InvalidOperationException($"Job {job.Id} has an empty payload")).SnapshotId;
}

internal sealed record SnapshotJob(long SnapshotId);
