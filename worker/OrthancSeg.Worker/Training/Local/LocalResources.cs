using Microsoft.Extensions.Options;

namespace OrthancSeg.Worker.Training.Local;

/// <summary>
/// This worker's one <see cref="ResourceLedger"/>: the machine's GPUs are discovered once (nvidia-smi or the configured list), on first use,
/// so a worker that never trains locally never runs nvidia-smi. A discovery that fails is not cached: the next use asks again.
/// </summary>
internal sealed class LocalResources(IOptions<LocalOptions> options, GpuDiscovery discovery) : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private ResourceLedger? _ledger;

    public async Task<ResourceLedger> LedgerAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _ledger) is { } ready)
        {
            return ready;
        }
        await _gate.WaitAsync(cancellationToken);
        try
        {
            _ledger ??= new ResourceLedger(await LocalCapacity.DiscoverAsync(options.Value, discovery, cancellationToken));
            return _ledger;
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose() => _gate.Dispose();
}
