namespace OrthancSeg.Worker.Jobs;

/// <summary>
/// At start-up, after the migrations and before any claim loop: takes back the leases a previous worker process of
/// this host still held when it was killed, so its jobs (an export half-way, say) run again now rather than after
/// OrthancSeg:Jobs:LeaseDuration. Never fatal: if it cannot run, those leases simply expire.
/// </summary>
internal sealed partial class LeaseRecoveryHostedService(JobQueue queue, ILogger<LeaseRecoveryHostedService> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            var released = await queue.ReleaseLeasesOfEndedProcessesAsync(cancellationToken);
            if (released > 0)
            {
                LogReleased(logger, released);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogFailed(logger, e);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Information, Message = "{Count} job(s) leased by an ended worker process of this host can be claimed again now")]
    private static partial void LogReleased(ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not look for leases of ended worker processes; they expire after the lease duration")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
