using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Inference;
using OrthancSeg.Worker.Training;
using OrthancSeg.Worker.Training.Local;
using OrthancSeg.Worker.Training.Slurm;

namespace OrthancSeg.Worker.Health;

/// <summary>The local backend as this worker's ledger holds it now: its GPUs (with the run holding each), CPUs and memory admitted against capacity.</summary>
internal sealed record LocalBackendReport(
    bool Healthy,
    string Detail,
    IReadOnlyList<(string Gpu, string? HeldBy)> Gpus,
    int CpusCapacity,
    int CpusAdmitted,
    long MemoryMiBCapacity,
    long MemoryMiBAdmitted,
    IReadOnlyList<LocalAllocation> Runs,
    int Waiting);

/// <summary>The Slurm backend: configured or not, whether sinfo and squeue answered, its partitions and the worker user's jobs.</summary>
internal sealed record SlurmBackendReport(
    bool Configured,
    bool Healthy,
    string Detail,
    IReadOnlyList<SlurmPartition> Partitions,
    int JobsPending,
    int JobsRunning);

/// <summary>
/// What the training backends have and hold, for the system status. The local backend is read from the one ledger that
/// <see cref="Training.Backends.BackendRunner"/> admits runs against, so a GPU shown as held is held there (the first status of a worker that
/// has not trained yet finds the GPUs, as the first run would, and the ledger keeps them). Slurm is asked only when the
/// worker is set up to use it, through <see cref="SlurmClient"/>, within <see cref="SlurmTimeout"/>.
/// </summary>
internal sealed class BackendStatus(
    LocalResources localResources,
    SlurmClient slurm,
    IOptions<LocalOptions> localOptions,
    IOptions<SlurmOptions> slurmOptions,
    IOptions<TrainingOptions> trainingOptions,
    IOptions<InferenceOptions> inferenceOptions)
{
    /// <summary>Slurm's commands give up on an unreachable controller after about 9 s; the status does not wait much longer.</summary>
    public static readonly TimeSpan SlurmTimeout = TimeSpan.FromSeconds(12);

    private static readonly TimeSpan LocalTimeout = TimeSpan.FromSeconds(10);

    public string DefaultBackend => trainingOptions.Value.DefaultBackend;

    /// <summary>
    /// Set up for Slurm: a Slurm setting (its commands' folder or slurm.conf), or slurm as the default backend of training or inference.
    /// A worker with none of these never submits to Slurm unless a request names it, so it is not asked here.
    /// </summary>
    public bool SlurmConfigured =>
        !string.IsNullOrWhiteSpace(slurmOptions.Value.BinDirectory) || !string.IsNullOrWhiteSpace(slurmOptions.Value.ConfigFile)
        || trainingOptions.Value.DefaultBackend == "slurm" || inferenceOptions.Value.Backend == "slurm";

    public async Task<LocalBackendReport> GetLocalAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(LocalTimeout);
        ResourceLedger ledger;
        try
        {
            ledger = await localResources.LedgerAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return Unknown($"finding the GPUs ({localOptions.Value.NvidiaSmi}) did not finish within {LocalTimeout.TotalSeconds:0} s");
        }
        catch (InvalidOperationException e)
        {
            return Unknown(e.Message);
        }
        catch (FormatException e)
        {
            return Unknown(e.Message);
        }
        var capacity = ledger.Capacity;
        var runs = ledger.Admitted.OrderBy(a => a.JobKey, StringComparer.Ordinal).ToList();
        var holders = runs.SelectMany(r => r.Gpus.Select(g => (Gpu: g, r.JobKey))).ToDictionary(h => h.Gpu, h => h.JobKey, StringComparer.Ordinal);
        var source = localOptions.Value.Gpus.Count > 0
            ? $"{capacity.Gpus.Count} GPU(s) configured in {LocalOptions.Section}:Gpus"
            : capacity.Gpus.Count > 0 ? $"{capacity.Gpus.Count} GPU(s) listed by {localOptions.Value.NvidiaSmi}" : $"no GPU ({localOptions.Value.NvidiaSmi} not found): CPU runs only";
        return new LocalBackendReport(true, source, [.. capacity.Gpus.Select(g => (g, holders.GetValueOrDefault(g)))],
            capacity.Cpus, runs.Sum(r => r.Cpus), capacity.MemoryMiB, runs.Sum(r => r.MemoryMiB), runs, ledger.WaitingCount);
    }

    public async Task<SlurmBackendReport> GetSlurmAsync(CancellationToken cancellationToken)
    {
        if (!SlurmConfigured)
        {
            return new SlurmBackendReport(false, false,
                $"no {SlurmOptions.Section} setting, and neither training nor inference defaults to slurm", [], 0, 0);
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(SlurmTimeout);
        try
        {
            var partitionsTask = slurm.GetPartitionsAsync(timeout.Token);
            var jobsTask = slurm.ListOwnJobsAsync(timeout.Token);
            await Task.WhenAll(partitionsTask, jobsTask);
            var (partitions, jobs) = (partitionsTask.Result, jobsTask.Result);
            var pending = jobs.Count(j => j.Phase == SlurmJobPhase.Queued);
            var running = jobs.Count(j => j.Phase == SlurmJobPhase.Running);
            return new SlurmBackendReport(true, true,
                $"sinfo lists {partitions.Count} partition(s) with {partitions.SelectMany(p => p.Nodes).Select(n => n.Name).Distinct().Count()} node(s); "
                + $"squeue lists {pending} pending and {running} running job(s) of this worker's user", partitions, pending, running);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new SlurmBackendReport(true, false, $"sinfo and squeue did not answer within {SlurmTimeout.TotalSeconds:0} s", [], 0, 0);
        }
        catch (Exception e) when (e is UnavailableException or SlurmCommandException or FormatException)
        {
            return new SlurmBackendReport(true, false, e.Message, [], 0, 0);
        }
    }

    private static LocalBackendReport Unknown(string why) => new(false, why, [], 0, 0, 0, 0, [], 0);
}
