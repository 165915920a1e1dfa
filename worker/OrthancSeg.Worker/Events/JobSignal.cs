namespace OrthancSeg.Worker.Events;

/// <summary>Wakes idle job loops when this process enqueued work, so a pushed event is handled at once instead of at the next poll.</summary>
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
