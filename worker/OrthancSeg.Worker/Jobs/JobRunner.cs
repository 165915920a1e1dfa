using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Errors;

namespace OrthancSeg.Worker.Jobs;

/// <summary>
/// The one job runner (design §2): one claim loop for every registered kind, each job run in its own DI scope by its kind's handler,
/// within the slots of the kind's pool. Every running job has a heartbeat that keeps its lease and notices a cancel request; a lost
/// lease or a cancel cancels the attempt's token. Outcomes: success; a failure (retried with backoff, then a dead letter); an outage
/// of Orthanc or PostgreSQL (handed back without spending the attempt); cancelled; or, when the worker stops, handed back for another
/// worker to run at once. See docs/architecture.md, "Jobs".
/// </summary>
internal sealed partial class JobRunner(
    JobQueue queue,
    JobSignal signal,
    DependencyOutages outages,
    IServiceScopeFactory scopes,
    IEnumerable<JobKindRegistration> kinds,
    IEnumerable<JobPool> pools,
    IServiceProvider services,
    IOptions<JobQueueOptions> options,
    ILogger<JobRunner> logger) : BackgroundService
{
    private readonly JobQueueOptions _options = options.Value;
    private readonly string _owner = JobOwner.For("jobs");
    private readonly ConcurrentDictionary<JobId, (Heartbeat Heartbeat, CancellationTokenSource Cancel)> _running = new();

    /// <summary>Cancels a job this process is running now (the cancel request is in the database already); other replicas notice it at their next heartbeat.</summary>
    public void CancelLocal(JobId id)
    {
        if (_running.TryGetValue(id, out var attempt))
        {
            attempt.Heartbeat.CancelRequested = true;
            try
            {
                attempt.Cancel.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The attempt just ended.
            }
        }
        signal.Notify();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        var registrations = kinds.ToDictionary(k => k.Kind, StringComparer.Ordinal);
        if (registrations.Count == 0)
        {
            return;
        }
        var sizes = pools.GroupBy(p => p.Name).ToDictionary(g => g.Key, g => Math.Max(1, g.Last().Size(services)), StringComparer.Ordinal);
        var busy = new ConcurrentDictionary<string, int>(StringComparer.Ordinal);
        var running = new ConcurrentDictionary<Task, bool>();
        var kindNames = string.Join(", ", registrations.Keys.Order(StringComparer.Ordinal));
        var poolSizes = string.Join(", ", registrations.Values.Select(r => r.Pool).Distinct().Order(StringComparer.Ordinal).Select(p => $"{p}={sizes.GetValueOrDefault(p, 1)}"));
        LogStarted(logger, _owner, kindNames, poolSizes);

        while (!stoppingToken.IsCancellationRequested)
        {
            var claimable = registrations.Values.Where(r => busy.GetValueOrDefault(r.Pool) < sizes.GetValueOrDefault(r.Pool, 1)).Select(r => r.Kind).ToList();
            ClaimedJob? job = null;
            if (claimable.Count > 0)
            {
                try
                {
                    job = await queue.ClaimAsync(_owner, claimable, stoppingToken);
                    outages.Up(Outage.PostgreSql);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception e) when (Outage.DependencyOf(e) is { } dependency)
                {
                    await DelayAsync(outages.Down(dependency, e), stoppingToken);
                    continue;
                }
                catch (Exception e)
                {
                    LogClaimFailed(logger, e);
                    await DelayAsync(_options.PollInterval, stoppingToken);
                    continue;
                }
            }
            if (job is null)
            {
                await WaitForWorkAsync(stoppingToken);
                continue;
            }
            var registration = registrations[job.Kind];
            busy.AddOrUpdate(registration.Pool, 1, (_, n) => n + 1);
            var task = RunAsync(job, stoppingToken);
            running[task] = true;
            _ = task.ContinueWith(t =>
            {
                busy.AddOrUpdate(registration.Pool, 0, (_, n) => n - 1);
                running.TryRemove(t, out _);
                signal.Notify();
            }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
        // Stopping: every attempt saw the token and hands its job back; wait for them so no lease is left behind.
        await Task.WhenAll(running.Keys);
    }

    private async Task RunAsync(ClaimedJob job, CancellationToken stoppingToken)
    {
        await Task.Yield();
        var attempt = new JobAttempt(job);
        if (job.Ending is { } ending)
        {
            await EndAsync(attempt, new JobEnding(Cancelled: ending == "cancelled", ending == "cancelled" ? "cancelled by an admin" : job.LastError ?? "its last attempt's lease expired"),
                stoppingToken);
            return;
        }
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var heartbeat = new Heartbeat();
        _running[job.Id] = (heartbeat, cancel);
        var beating = HeartbeatAsync(job, heartbeat, cancel);
        Exception? error = null;
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var handler = scope.ServiceProvider.GetRequiredKeyedService<IJobHandler>(job.Kind);
            await handler.RunAsync(attempt, cancel.Token);
        }
        catch (Exception e)
        {
            error = e;
        }
        finally
        {
            _running.TryRemove(job.Id, out _);
            heartbeat.Done = true;
            await cancel.CancelAsync();
            await beating;
        }

        if (error is null)
        {
            if (!attempt.Completed)
            {
                await RecordAsync(job, () => queue.CompleteAsync(job, CancellationToken.None));
            }
            outages.Up();
            return;
        }
        if (heartbeat.LeaseLost || error is JobLeaseLostException)
        {
            // Someone else owns the job now; whatever this attempt did is not published (fencing) and not recorded.
            LogLeaseLost(logger, job.Id.Value, job.Kind, job.Attempt);
            return;
        }
        if (heartbeat.CancelRequested || error is JobCancelRequestedException)
        {
            // Whatever the attempt threw while stopping (a cancelled wait, a killed child process), it was asked to stop.
            await EndAsync(attempt, new JobEnding(Cancelled: true, "cancelled by an admin while running"), CancellationToken.None);
            return;
        }
        if (stoppingToken.IsCancellationRequested)
        {
            // Hand the job back now rather than leaving it leased until the lease expires: a restarted worker (or another replica)
            // runs it at once, and the interrupted attempt is not counted against it.
            await RecordAsync(job, () => queue.HandBackAsync(job, "the worker stopped during this attempt; it runs again", TimeSpan.Zero, CancellationToken.None));
            LogHandedBack(logger, job.Id.Value, job.Kind);
            return;
        }
        if (Outage.DependencyOf(error) is { } dependency)
        {
            var delay = outages.Down(dependency, error);
            await RecordAsync(job, () => queue.HandBackAsync(job, $"waiting for {dependency}: {error.Message}", delay, CancellationToken.None));
            return;
        }

        var message = string.IsNullOrWhiteSpace(error.Message) ? error.GetType().Name : error.Message;
        JobFailure? failure = null;
        await RecordAsync(job, async () => failure = await queue.FailAsync(job, message, CancellationToken.None));
        if (failure is null)
        {
            return;
        }
        LogFailed(logger, error, job.Id.Value, job.Kind, job.IdempotencyKey, job.Attempt, job.MaxAttempts, failure.Dead);
        await HookAsync(job, handler => failure.Dead
            ? handler.OnEndedAsync(attempt, new JobEnding(Cancelled: false, $"attempt {job.Attempt} of {job.MaxAttempts} failed, giving up: {message}"), CancellationToken.None)
            : handler.OnAttemptFailedAsync(attempt, $"attempt {job.Attempt} of {job.MaxAttempts} failed, retrying at {failure.RetryAt:u}: {message}",
                failure.RetryAt!.Value, CancellationToken.None));
    }

    /// <summary>Ends a job as cancelled or dead: the handler's hook first (so the feature's record says why), then the job row.</summary>
    private async Task EndAsync(JobAttempt attempt, JobEnding ending, CancellationToken cancellationToken)
    {
        var job = attempt.Job;
        await HookAsync(job, handler => handler.OnEndedAsync(attempt, ending, cancellationToken));
        await RecordAsync(job, () => queue.EndAsync(job, ending.Cancelled ? "cancelled" : "dead", ending.Cancelled ? ending.Error : null, CancellationToken.None));
        LogEnded(logger, job.Id.Value, job.Kind, ending.Cancelled ? "cancelled" : "dead", ending.Error);
    }

    private async Task HookAsync(ClaimedJob job, Func<IJobHandler, Task> hook)
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            await hook(scope.ServiceProvider.GetRequiredKeyedService<IJobHandler>(job.Kind));
        }
        catch (Exception e)
        {
            LogHookFailed(logger, e, job.Id.Value, job.Kind);
        }
    }

    /// <summary>
    /// Records an outcome, retrying while PostgreSQL is unreachable (for up to a lease: after that the job is someone else's to run),
    /// so a database restart during a job does not cost it an attempt or make it run twice.
    /// </summary>
    private async Task RecordAsync(ClaimedJob job, Func<Task> record)
    {
        var deadline = DateTimeOffset.UtcNow + _options.LeaseDuration;
        while (true)
        {
            try
            {
                await record();
                return;
            }
            catch (JobLeaseLostException)
            {
                LogLeaseLost(logger, job.Id.Value, job.Kind, job.Attempt);
                return;
            }
            catch (Exception e) when (Outage.DependencyOf(e) == Outage.PostgreSql && DateTimeOffset.UtcNow < deadline)
            {
                await Task.Delay(outages.Down(Outage.PostgreSql, e), CancellationToken.None);
            }
            catch (Exception e)
            {
                LogNotRecorded(logger, e, job.Id.Value, job.Kind);
                return;
            }
        }
    }

    private sealed class Heartbeat
    {
        public volatile bool Done;
        public volatile bool LeaseLost;
        public volatile bool CancelRequested;
    }

    /// <summary>
    /// Every HeartbeatInterval (or a third of a shorter lease): checks the lease and the cancel flag, extending the lease once less than
    /// two thirds of it remain. A lost lease or a cancel request cancels the attempt. A database hiccup is not a lost lease: the lease
    /// stays good until it expires, so the next beat tries again.
    /// </summary>
    private async Task HeartbeatAsync(ClaimedJob job, Heartbeat heartbeat, CancellationTokenSource attempt)
    {
        var lease = _options.LeaseDuration;
        var period = TimeSpan.FromTicks(Math.Min(_options.HeartbeatInterval.Ticks, lease.Ticks / 3));
        var expires = job.LeaseExpiresAt;
        while (!heartbeat.Done)
        {
            try
            {
                await Task.Delay(period, attempt.Token);
                var extend = expires - DateTimeOffset.UtcNow < lease * 2 / 3;
                var state = await queue.HeartbeatAsync(job, extend, attempt.Token);
                expires = state.ExpiresAt;
                if (state.CancelRequested)
                {
                    heartbeat.CancelRequested = true;
                    await attempt.CancelAsync();
                    return;
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (JobLeaseLostException)
            {
                heartbeat.LeaseLost = true;
                await attempt.CancelAsync();
                return;
            }
            catch (Exception e) when (Outage.DependencyOf(e) is { } dependency)
            {
                outages.Down(dependency, e);
            }
            catch (Exception e)
            {
                LogHeartbeatFailed(logger, e, job.Id.Value);
            }
        }
    }

    private async Task WaitForWorkAsync(CancellationToken stoppingToken)
    {
        try
        {
            await signal.WaitAsync(_options.PollInterval, stoppingToken);
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    private static async Task DelayAsync(TimeSpan delay, CancellationToken stoppingToken)
    {
        try
        {
            await Task.Delay(delay, stoppingToken);
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Job runner {Owner} runs {Kinds} (pool slots: {Pools})")]
    private static partial void LogStarted(ILogger logger, string owner, string kinds, string pools);

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not claim a job; retrying")]
    private static partial void LogClaimFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} ({Kind}) lost the lease of attempt {Attempt}; its work is discarded, another claimer owns the job")]
    private static partial void LogLeaseLost(ILogger logger, long jobId, string kind, int attempt);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} ({Kind} {Key}) failed on attempt {Attempt} of {MaxAttempts}; dead letter: {Dead}")]
    private static partial void LogFailed(ILogger logger, Exception exception, long jobId, string kind, string key, int attempt, int maxAttempts, bool dead);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} ({Kind}) handed back: the worker is stopping")]
    private static partial void LogHandedBack(ILogger logger, long jobId, string kind);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} ({Kind}) ended {State}: {Reason}")]
    private static partial void LogEnded(ILogger logger, long jobId, string kind, string state, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "The end hook of job {JobId} ({Kind}) failed; the job's own state is recorded regardless")]
    private static partial void LogHookFailed(ILogger logger, Exception exception, long jobId, string kind);

    [LoggerMessage(Level = LogLevel.Error, Message = "The outcome of job {JobId} ({Kind}) could not be recorded; its lease will expire and it runs again")]
    private static partial void LogNotRecorded(ILogger logger, Exception exception, long jobId, string kind);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not check the lease of job {JobId}; trying again")]
    private static partial void LogHeartbeatFailed(ILogger logger, Exception exception, long jobId);
}
