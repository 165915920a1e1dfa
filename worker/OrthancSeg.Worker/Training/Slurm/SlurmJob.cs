namespace OrthancSeg.Worker.Training.Slurm;

/// <summary>Where a job is in its life, as the training records need it; <see cref="SlurmJob.State"/> keeps Slurm's own word.</summary>
internal enum SlurmJobPhase
{
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// <summary>
/// A job as squeue, scontrol or sacct describe it. Fields a source does not report are null (squeue has no exit code;
/// sacct has no comment). Times are the controller's local times as printed, without a zone.
/// </summary>
internal sealed record SlurmJob
{
    public required long JobId { get; init; }
    public required string Name { get; init; }

    /// <summary>Slurm's state word: PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, OUT_OF_MEMORY, …</summary>
    public required string State { get; init; }

    /// <summary>Why it is pending or ended (None, Dependency, Resources, NonZeroExitCode, TimeLimit, DependencyNeverSatisfied, …).</summary>
    public string? Reason { get; init; }

    public string? Partition { get; init; }

    /// <summary>The node(s) it runs or ran on; null before it started.</summary>
    public string? NodeList { get; init; }

    /// <summary>The exit code of the batch script (the part before ':' of Slurm's ExitCode); null when the source has none.</summary>
    public int? ExitCode { get; init; }

    /// <summary>The signal that ended it (after ':'), e.g. 15 on a time limit or cancel; 0 when none.</summary>
    public int? Signal { get; init; }

    public string? Comment { get; init; }
    public string? OutputPath { get; init; }
    public DateTime? SubmitTime { get; init; }
    public DateTime? StartTime { get; init; }
    public DateTime? EndTime { get; init; }

    public SlurmJobPhase Phase => PhaseOf(State);

    public bool IsFinished => Phase is SlurmJobPhase.Succeeded or SlurmJobPhase.Failed or SlurmJobPhase.Cancelled;

    /// <summary>
    /// A pending job whose reason means it will never start: a dependency that failed (without
    /// DependencyParameters=kill_invalid_depend Slurm leaves it pending for ever), or a request beyond the
    /// partition's nodes that sbatch accepted (more CPUs than a node has stays PENDING PartitionConfig for ever).
    /// </summary>
    public bool WillNeverStart => Phase == SlurmJobPhase.Queued && Reason is "DependencyNeverSatisfied" or "PartitionConfig"
        or "BadConstraints" or "PartitionNodeLimit" or "PartitionTimeLimit";

    /// <summary>Maps Slurm's job states (squeue/scontrol words, sacct's "CANCELLED by 0" too) onto the phases.</summary>
    public static SlurmJobPhase PhaseOf(string state)
    {
        var word = state.Split(' ', 2)[0].TrimEnd('+');
        return word switch
        {
            "PENDING" or "REQUEUED" or "REQUEUE_HOLD" or "REQUEUE_FED" or "RESV_DEL_HOLD" or "CONFIGURING" => SlurmJobPhase.Queued,
            // Still holding the allocation: COMPLETING waits for the epilog, and the exit code is final only after it.
            "RUNNING" or "COMPLETING" or "SUSPENDED" or "STOPPED" or "SIGNALING" or "STAGE_OUT" or "RESIZING" => SlurmJobPhase.Running,
            "COMPLETED" => SlurmJobPhase.Succeeded,
            "CANCELLED" => SlurmJobPhase.Cancelled,
            "FAILED" or "TIMEOUT" or "OUT_OF_MEMORY" or "NODE_FAIL" or "BOOT_FAIL" or "DEADLINE" or "PREEMPTED" or "SPECIAL_EXIT" or "REVOKED"
                => SlurmJobPhase.Failed,
            _ => throw new FormatException($"unknown Slurm job state '{state}'"),
        };
    }
}

/// <summary>One node of a partition as sinfo reports it: what a single job could at most get there.</summary>
internal sealed record SlurmNode(string Name, int Cpus, long MemoryMiB, int Gpus, string State);

/// <summary>A partition, its nodes, and its maximum time limit (null: unlimited).</summary>
internal sealed record SlurmPartition(string Name, bool IsDefault, TimeSpan? MaxTime, IReadOnlyList<SlurmNode> Nodes);
