using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Cases;
using OrthancSeg.Worker.Jobs;
using OrthancSeg.Worker.Labels;
using OrthancSeg.Worker.Workflows;

namespace OrthancSeg.Worker.Events;

/// <summary>
/// Claims series, segmentation and backfill jobs from the durable queue and runs each in its own DI scope.
/// A failure is recorded on the job (retried with backoff, then dead-lettered), never lost and never fatal to the loop.
/// </summary>
internal sealed partial class RecordingJobRunner(
    JobQueue queue, JobSignal signal, IServiceScopeFactory scopes, IOptions<RecordingOptions> options, ILogger<RecordingJobRunner> logger)
    : BackgroundService
{
    private readonly RecordingOptions _options = options.Value;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(Enumerable.Range(0, _options.Concurrency).Select(i => LoopAsync(JobOwner.For(i.ToString(System.Globalization.CultureInfo.InvariantCulture)), stoppingToken)));

    private async Task LoopAsync(string owner, CancellationToken stoppingToken)
    {
        await Task.Yield();
        while (!stoppingToken.IsCancellationRequested)
        {
            ClaimedJob? job;
            try
            {
                job = await queue.ClaimAsync(owner, RecordingJobs.Kinds, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                LogClaimFailed(logger, e);
                await WaitAsync(stoppingToken);
                continue;
            }
            if (job is null)
            {
                await WaitAsync(stoppingToken);
                continue;
            }
            await RunAsync(job, stoppingToken);
        }
    }

    private async Task RunAsync(ClaimedJob job, CancellationToken stoppingToken)
    {
        try
        {
            await using (var scope = scopes.CreateAsyncScope())
            {
                var services = scope.ServiceProvider;
                switch (job.Kind)
                {
                    case RecordingJobs.SeriesKind:
                        await services.GetRequiredService<SeriesRecorder>().RecordAsync(RecordingJobs.Read<SeriesJob>(job), _options.NewSeriesCheckDelay, stoppingToken);
                        break;
                    case RecordingJobs.SegmentationKind:
                        await services.GetRequiredService<SegmentationRecorder>().RecordAsync(RecordingJobs.Read<SegmentationJob>(job), stoppingToken);
                        break;
                    case RecordingJobs.BackfillKind:
                        await services.GetRequiredService<WorkflowBackfill>().RunAsync(RecordingJobs.Read<BackfillJob>(job), stoppingToken);
                        break;
                    default:
                        throw new InvalidOperationException($"Job kind '{job.Kind}' is not one the recording runner handles");
                }
            }
            await queue.CompleteAsync(job, stoppingToken);
            signal.Notify();
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down: hand the job back now rather than leaving it leased until the lease expires, so a restarted
            // worker (or another replica) runs it after the short backoff instead of minutes later.
            try
            {
                await queue.FailAsync(job, "the worker stopped during this attempt", CancellationToken.None);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogFailureNotRecorded(logger, e, job.Id.Value);
            }
        }
        catch (JobLeaseLostException e)
        {
            LogLeaseLost(logger, e, job.Id.Value, job.Kind);
        }
        catch (Exception e)
        {
            try
            {
                var failure = await queue.FailAsync(job, e.Message, stoppingToken);
                LogJobFailed(logger, e, job.Id.Value, job.Kind, job.IdempotencyKey, job.Attempt, failure.Dead);
            }
            catch (Exception recordError) when (recordError is not OperationCanceledException)
            {
                LogFailureNotRecorded(logger, recordError, job.Id.Value);
            }
        }
    }

    private async Task WaitAsync(CancellationToken stoppingToken)
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

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not claim a job; retrying")]
    private static partial void LogClaimFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} ({Kind}) lost its lease; another claimer owns it now")]
    private static partial void LogLeaseLost(ILogger logger, Exception exception, long jobId, string kind);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} ({Kind} {Key}) failed on attempt {Attempt}; dead letter: {Dead}")]
    private static partial void LogJobFailed(ILogger logger, Exception exception, long jobId, string kind, string key, int attempt, bool dead);

    [LoggerMessage(Level = LogLevel.Error, Message = "The failure of job {JobId} could not be recorded; its lease will expire and it runs again")]
    private static partial void LogFailureNotRecorded(ILogger logger, Exception exception, long jobId);
}
