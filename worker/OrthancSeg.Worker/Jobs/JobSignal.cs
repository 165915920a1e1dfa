namespace OrthancSeg.Worker.Jobs;

/// <summary>Wakes the idle job runner when this process enqueued, retried or cancelled work, so it is claimed at once instead of at the next poll; other replicas poll.</summary>
internal sealed class JobSignal : IDisposable
{
    private readonly SemaphoreSlim _semaphore = new(0, int.MaxValue);

    public void Notify()
    {
        if (_semaphore.CurrentCount < 64)
        {
            _semaphore.Release();
        }
    }

    public async Task WaitAsync(TimeSpan timeout, CancellationToken cancellationToken) => await _semaphore.WaitAsync(timeout, cancellationToken);

    public void Dispose() => _semaphore.Dispose();
}
