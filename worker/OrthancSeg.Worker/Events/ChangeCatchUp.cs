using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Labels;
using OrthancSeg.Worker.Cases;
using OrthancSeg.Dicom;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Jobs;
using OrthancSeg.Worker.Orthanc;
using OrthancSeg.Worker.Persistence;

namespace OrthancSeg.Worker.Events;

/// <summary>
/// Replays Orthanc's /changes log from the stored cursor at start-up and periodically, enqueueing the same jobs
/// the bridge's pushes would (same idempotency keys, so a change seen both ways is one job). The cursor moves
/// past a page only after every job of that page is durably enqueued: a crash replays the page, never skips it.
/// </summary>
internal sealed partial class ChangeCatchUp(
    OrthancClient orthanc, ChangeCursor cursor, JobQueue queue, DependencyOutages outages, IOptions<RecordingOptions> options, ILogger<ChangeCatchUp> logger)
    : BackgroundService
{
    private const int LookupConcurrency = 8;
    private readonly RecordingOptions _options = options.Value;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_options.CatchUpInterval);
        do
        {
            try
            {
                await CatchUpAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (Outage.DependencyOf(e) is { } dependency)
            {
                // Orthanc or PostgreSQL away: said once (not every tick); the next tick starts again from the stored cursor.
                outages.Down(dependency, e);
                continue;
            }
            catch (Exception e)
            {
                LogCatchUpFailed(logger, e);
                continue;
            }
            outages.Up();
        }
        while (await WaitForTickAsync(timer, stoppingToken));
    }

    /// <summary>Reads every change after the cursor; returns how many changes were read.</summary>
    public async Task<long> CatchUpAsync(CancellationToken cancellationToken)
    {
        var since = await cursor.GetAsync(cancellationToken);
        long read = 0;
        while (true)
        {
            var page = await orthanc.GetChangesAsync(since, _options.ChangesPageSize, cancellationToken);
            var (changes, last, done) = (page.Changes, page.Last, page.Done);
            await EnqueueAsync(changes, cancellationToken);
            read += changes.Count;
            if (last > since)
            {
                since = await cursor.AdvanceAsync(last, cancellationToken);
            }
            if (done || changes.Count == 0)
            {
                break;
            }
        }
        if (read > 0)
        {
            LogCaughtUp(logger, read, since);
        }
        return read;
    }

    private async Task EnqueueAsync(IReadOnlyList<OrthancChange> changes, CancellationToken cancellationToken)
    {
        var checkAt = DateTimeOffset.UtcNow + _options.NewSeriesCheckDelay;
        await Parallel.ForEachAsync(changes, new ParallelOptions { MaxDegreeOfParallelism = LookupConcurrency, CancellationToken = cancellationToken },
            async (change, ct) =>
            {
                switch (change.ChangeType)
                {
                    case "StableSeries":
                        await RecordSeriesHandler.EnqueueAsync(queue, change.ResourceId, change.Seq, ct);
                        break;
                    case "NewSeries":
                        await RecordSeriesHandler.EnqueueNewAsync(queue, change.ResourceId, change.Seq, 0, checkAt, ct);
                        break;
                    case "NewInstance" when await IsSegmentationAsync(change.ResourceId, ct):
                        await RecordSegmentationHandler.EnqueueAsync(queue, change.ResourceId, null, ct);
                        break;
                    default:
                        break;
                }
            });
    }

    private async Task<bool> IsSegmentationAsync(string orthancInstanceId, CancellationToken cancellationToken)
    {
        try
        {
            return SopClasses.IsSegmentation(await orthanc.GetInstanceSopClassUidAsync(orthancInstanceId, cancellationToken));
        }
        catch (OrthancException e) when (e.IsNotFound)
        {
            // Deleted since: nothing to record.
            return false;
        }
    }

    private static async Task<bool> WaitForTickAsync(PeriodicTimer timer, CancellationToken stoppingToken)
    {
        try
        {
            return await timer.WaitForNextTickAsync(stoppingToken);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Caught up on {ChangeCount} Orthanc changes; cursor at {Seq}")]
    private static partial void LogCaughtUp(ILogger logger, long changeCount, long seq);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Catching up on Orthanc's changes failed; retrying at the next interval")]
    private static partial void LogCatchUpFailed(ILogger logger, Exception exception);
}
