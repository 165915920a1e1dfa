using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Jobs;

namespace OrthancSeg.Worker.Datasets;

/// <summary>Wakes the idle export loop when this process queued an export, instead of waiting for the next poll.</summary>
internal sealed class SnapshotSignal : IDisposable
{
    private readonly SemaphoreSlim _semaphore = new(0, 1);

    public void Notify()
    {
        try
        {
            _semaphore.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already signalled.
        }
    }

    public Task WaitAsync(TimeSpan timeout, CancellationToken cancellationToken) => _semaphore.WaitAsync(timeout, cancellationToken);

    public void Dispose() => _semaphore.Dispose();
}

/// <summary>
/// Claims export jobs from the durable queue, one at a time per worker (an export already runs several series in
/// parallel), and keeps the job's lease alive while it runs. A killed worker stops extending the lease, so after it
/// expires the job is claimed again and the export starts over, removing what the killed attempt left half-built.
/// </summary>
internal sealed partial class SnapshotJobRunner(
    JobQueue queue, SnapshotSignal signal, IServiceScopeFactory scopes, SnapshotStore snapshots, IOptions<DatasetOptions> options,
    IOptions<JobQueueOptions> queueOptions, ILogger<SnapshotJobRunner> logger) : BackgroundService
{
    public const string Kind = "snapshot";

    private static readonly string[] Kinds = [Kind];
    private readonly string _owner = JobOwner.For("snapshots");

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        while (!stoppingToken.IsCancellationRequested)
        {
            ClaimedJob? job = null;
            try
            {
                job = await queue.ClaimAsync(_owner, Kinds, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                LogClaimFailed(logger, e);
            }
            if (job is null)
            {
                try
                {
                    await signal.WaitAsync(options.Value.PollInterval, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                continue;
            }
            await RunAsync(job, stoppingToken);
        }
    }

    private async Task RunAsync(ClaimedJob job, CancellationToken stoppingToken)
    {
        var snapshotId = SnapshotJobs.Read(job);
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var heartbeat = KeepLeaseAsync(job, attempt);
        try
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                await scope.ServiceProvider.GetRequiredService<SnapshotExporter>().RunAsync(snapshotId, attempt.Token);
            }
            finally
            {
                await attempt.CancelAsync();
                await heartbeat;
            }
            await queue.CompleteAsync(job, stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down: hand the job back now instead of leaving it leased until the lease expires, so a restarted
            // worker (or another replica) runs the export again after the short backoff. (A killed worker cannot: then the lease expires.)
            await RecordAsync(() => FailAttemptAsync(job, snapshotId, new OperationCanceledException("the worker stopped during this attempt"), CancellationToken.None));
        }
        catch (JobLeaseLostException e)
        {
            LogLeaseLost(logger, e, snapshotId);
        }
        catch (OperationCanceledException e)
        {
            LogLeaseLost(logger, e, snapshotId);
        }
        catch (SnapshotRefusedException e)
        {
            LogRefused(logger, snapshotId, e.Message);
            await RecordAsync(() => snapshots.FailAsync(snapshotId, e.Message, e.ReportJson, final: true, stoppingToken));
            await RecordAsync(() => queue.CompleteAsync(job, stoppingToken));
        }
        catch (Exception e)
        {
            await RecordAsync(() => FailAttemptAsync(job, snapshotId, e, stoppingToken));
        }
    }

    private async Task FailAttemptAsync(ClaimedJob job, long snapshotId, Exception e, CancellationToken cancellationToken)
    {
        var failure = await queue.FailAsync(job, e.Message, cancellationToken);
        LogAttemptFailed(logger, e, snapshotId, job.Attempt, failure.Dead);
        var error = failure.Dead
            ? $"attempt {job.Attempt} of {job.MaxAttempts} failed, giving up: {e.Message}"
            : $"attempt {job.Attempt} of {job.MaxAttempts} failed, retrying at {failure.RetryAt:u}: {e.Message}";
        await snapshots.FailAsync(snapshotId, error, null, final: failure.Dead, cancellationToken);
    }

    /// <summary>Extends the lease every third of its duration; a lost lease cancels the attempt, whose work someone else now owns.</summary>
    private async Task KeepLeaseAsync(ClaimedJob job, CancellationTokenSource attempt)
    {
        var period = queueOptions.Value.LeaseDuration / 3;
        while (!attempt.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(period, attempt.Token);
                await queue.ExtendLeaseAsync(job, attempt.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (JobLeaseLostException)
            {
                await attempt.CancelAsync();
                return;
            }
            catch (Exception e)
            {
                // The database hiccupped; the lease is still good until it expires, so try again next period.
                LogHeartbeatFailed(logger, e, job.Id.Value);
            }
        }
    }

    private async Task RecordAsync(Func<Task> record)
    {
        try
        {
            await record();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogRecordFailed(logger, e);
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not claim an export job; retrying")]
    private static partial void LogClaimFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Export of snapshot {SnapshotId} lost its lease; another claimer owns it now")]
    private static partial void LogLeaseLost(ILogger logger, Exception exception, long snapshotId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Snapshot {SnapshotId} failed: {Reason}")]
    private static partial void LogRefused(ILogger logger, long snapshotId, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Export of snapshot {SnapshotId} failed on attempt {Attempt}; given up: {Dead}")]
    private static partial void LogAttemptFailed(ILogger logger, Exception exception, long snapshotId, int attempt, bool dead);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not extend the lease of job {JobId}; trying again")]
    private static partial void LogHeartbeatFailed(ILogger logger, Exception exception, long jobId);

    [LoggerMessage(Level = LogLevel.Error, Message = "The outcome of an export could not be recorded; its lease will expire and it runs again")]
    private static partial void LogRecordFailed(ILogger logger, Exception exception);
}
