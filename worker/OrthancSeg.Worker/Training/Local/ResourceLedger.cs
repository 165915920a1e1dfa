namespace OrthancSeg.Worker.Training.Local;

/// <summary>What one local job asks for; memory in MiB.</summary>
internal sealed record LocalRequest(int Gpus, int Cpus, long MemoryMiB);

/// <summary>What a job was given: its own GPUs (CUDA_VISIBLE_DEVICES values), CPUs and memory.</summary>
internal sealed record LocalAllocation(string JobKey, IReadOnlyList<string> Gpus, int Cpus, long MemoryMiB)
{
    /// <summary>The CUDA_VISIBLE_DEVICES value; empty for a CPU job, so that it sees no GPU at all.</summary>
    public string CudaVisibleDevices => string.Join(',', Gpus);
}

/// <summary>The machine's capacity the ledger admits against.</summary>
internal sealed record LocalCapacity(IReadOnlyList<string> Gpus, int Cpus, long MemoryMiB)
{
    /// <summary>The configured capacity, else the discovered GPUs, every CPU and the memory this process may use (cgroup limits included).</summary>
    public static async Task<LocalCapacity> DiscoverAsync(LocalOptions options, GpuDiscovery discovery, CancellationToken cancellationToken)
    {
        var gpus = await discovery.DiscoverAsync(cancellationToken);
        return new LocalCapacity([.. gpus.Select(g => g.Id)],
            options.Cpus > 0 ? options.Cpus : Environment.ProcessorCount,
            options.MemoryMiB > 0 ? options.MemoryMiB : GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1024 * 1024));
    }
}

/// <summary>
/// Admission of local jobs against the machine's GPUs, CPUs and memory. A job is admitted only when all of its
/// request fits at once; GPUs are exclusive (a job never shares one), CPUs and memory are summed. Jobs that do not
/// fit wait in arrival order, but a later job that fits runs before an earlier one that does not (backfill), so one
/// large request does not idle the machine. A request larger than the machine is refused at once with the reason.
/// </summary>
internal sealed class ResourceLedger(LocalCapacity capacity)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, LocalAllocation> _admitted = new(StringComparer.Ordinal);
    private readonly List<Waiter> _waiting = [];

    public LocalCapacity Capacity { get; } = capacity;

    /// <summary>Why the request can never run here, or null when it could once enough is free.</summary>
    public string? WhyItCanNeverFit(LocalRequest request)
    {
        var problems = new List<string>();
        if (request.Gpus < 0 || request.Cpus < 1 || request.MemoryMiB < 0)
        {
            return $"a request needs 0 or more GPUs, at least 1 CPU and 0 or more MiB, not {request.Gpus} GPU(s), {request.Cpus} CPU(s), {request.MemoryMiB} MiB";
        }
        if (request.Gpus > Capacity.Gpus.Count)
        {
            problems.Add(Capacity.Gpus.Count == 0
                ? $"{request.Gpus} GPU(s) asked but this machine has none (ask for 0 GPUs to train on CPU)"
                : $"{request.Gpus} GPU(s) asked but this machine has {Capacity.Gpus.Count} ({string.Join(", ", Capacity.Gpus)})");
        }
        if (request.Cpus > Capacity.Cpus)
        {
            problems.Add($"{request.Cpus} CPU(s) asked but the local backend has {Capacity.Cpus}");
        }
        if (request.MemoryMiB > Capacity.MemoryMiB)
        {
            problems.Add($"{request.MemoryMiB} MiB asked but the local backend has {Capacity.MemoryMiB} MiB");
        }
        return problems.Count == 0 ? null : string.Join("; ", problems);
    }

    /// <summary>Admits the job now if it fits, else returns null. Throws <see cref="LocalRequestRefusedException"/> when it never could.</summary>
    public LocalAllocation? TryAdmit(string jobKey, LocalRequest request)
    {
        Refuse(request);
        lock (_lock)
        {
            if (_admitted.TryGetValue(jobKey, out var existing))
            {
                return existing;
            }
            // Whatever waits does not fit now (it would have been admitted), so a job that fits may go first; a job
            // that is itself waiting is admitted through its wait, never twice.
            return Fits(request) && !_waiting.Exists(w => w.JobKey == jobKey) ? AdmitLocked(jobKey, request) : null;
        }
    }

    /// <summary>Waits until the job fits, then admits it. Cancelling gives up the place in the queue.</summary>
    public async Task<LocalAllocation> AdmitAsync(string jobKey, LocalRequest request, CancellationToken cancellationToken)
    {
        Refuse(request);
        Waiter waiter;
        Waiter? joined;
        lock (_lock)
        {
            if (_admitted.TryGetValue(jobKey, out var existing))
            {
                return existing;
            }
            // A second wait for the same job joins the first instead of queueing it twice (and admitting it twice).
            joined = _waiting.Find(w => w.JobKey == jobKey);
            waiter = joined ?? new Waiter(jobKey, request);
            if (joined is null)
            {
                _waiting.Add(waiter);
                AdmitWaitersLocked();
            }
        }
        if (joined is not null)
        {
            return await waiter.Admitted.Task.WaitAsync(cancellationToken);
        }
        using (cancellationToken.Register(() => Abandon(waiter)))
        {
            return await waiter.Admitted.Task;
        }
    }

    /// <summary>
    /// Puts back an allocation recorded before a restart, for a job that is still running, before anything new is
    /// admitted: the GPUs it holds are not handed out twice.
    /// </summary>
    public void Restore(LocalAllocation allocation)
    {
        lock (_lock)
        {
            var taken = _admitted.Values.SelectMany(a => a.Gpus).ToHashSet(StringComparer.Ordinal);
            var clash = allocation.Gpus.Where(taken.Contains).ToList();
            if (clash.Count > 0 || allocation.Gpus.Any(g => !Capacity.Gpus.Contains(g)))
            {
                throw new InvalidOperationException($"job {allocation.JobKey} held GPU(s) {allocation.CudaVisibleDevices}, which are "
                    + (clash.Count > 0 ? $"held by another job ({string.Join(", ", clash)})" : "not among this machine's GPUs"));
            }
            _admitted[allocation.JobKey] = allocation;
        }
    }

    /// <summary>Gives the job's resources back and admits whoever waits and now fits.</summary>
    public void Release(string jobKey)
    {
        lock (_lock)
        {
            if (_admitted.Remove(jobKey))
            {
                AdmitWaitersLocked();
            }
        }
    }

    public IReadOnlyList<LocalAllocation> Admitted
    {
        get
        {
            lock (_lock)
            {
                return [.. _admitted.Values];
            }
        }
    }

    public int WaitingCount
    {
        get
        {
            lock (_lock)
            {
                return _waiting.Count;
            }
        }
    }

    private void Refuse(LocalRequest request)
    {
        if (WhyItCanNeverFit(request) is { } reason)
        {
            throw new LocalRequestRefusedException(reason);
        }
    }

    private void Abandon(Waiter waiter)
    {
        lock (_lock)
        {
            if (_waiting.Remove(waiter))
            {
                waiter.Admitted.TrySetCanceled();
                AdmitWaitersLocked();
            }
        }
    }

    private void AdmitWaitersLocked()
    {
        foreach (var waiter in _waiting.ToList())
        {
            if (Fits(waiter.Request))
            {
                _waiting.Remove(waiter);
                waiter.Admitted.TrySetResult(AdmitLocked(waiter.JobKey, waiter.Request));
            }
        }
    }

    private bool Fits(LocalRequest request)
    {
        var gpusInUse = _admitted.Values.Sum(a => a.Gpus.Count);
        return Capacity.Gpus.Count - gpusInUse >= request.Gpus
            && Capacity.Cpus - _admitted.Values.Sum(a => a.Cpus) >= request.Cpus
            && Capacity.MemoryMiB - _admitted.Values.Sum(a => a.MemoryMiB) >= request.MemoryMiB;
    }

    private LocalAllocation AdmitLocked(string jobKey, LocalRequest request)
    {
        var taken = _admitted.Values.SelectMany(a => a.Gpus).ToHashSet(StringComparer.Ordinal);
        var allocation = new LocalAllocation(jobKey, [.. Capacity.Gpus.Where(g => !taken.Contains(g)).Take(request.Gpus)], request.Cpus, request.MemoryMiB);
        _admitted[jobKey] = allocation;
        return allocation;
    }

    private sealed record Waiter(string JobKey, LocalRequest Request)
    {
        public TaskCompletionSource<LocalAllocation> Admitted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}

/// <summary>A local request larger than the machine; the message is the reason, for the person who asked.</summary>
internal sealed class LocalRequestRefusedException(string message) : Exception(message);
