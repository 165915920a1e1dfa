namespace OrthancSeg.Worker.Training.Slurm;

/// <summary>
/// One batch job to submit. <see cref="Name"/> must be deterministic for the piece of work (not per attempt): it is
/// how a retried submission finds the job it already submitted instead of submitting a second one.
/// </summary>
internal sealed record SlurmJobRequest
{
    /// <summary>The job name; letters, digits, '.', '_' and '-' only (squeue --name takes a comma list).</summary>
    public required string Name { get; init; }

    /// <summary>The batch script (starting with #!), passed to sbatch on standard input.</summary>
    public required string Script { get; init; }

    /// <summary>Where stdout and stderr of the job go (--output and --error), an absolute path on the shared file system.</summary>
    public required string OutputPath { get; init; }

    /// <summary>The job's working directory (--chdir); absolute.</summary>
    public required string WorkingDirectory { get; init; }

    public required SlurmResources Resources { get; init; }

    /// <summary>Jobs that must have succeeded before this one starts (--dependency=afterok:A:B).</summary>
    public IReadOnlyList<long> AfterOk { get; init; } = [];

    /// <summary>Free text shown by squeue %k and scontrol (--comment), e.g. which training run this is.</summary>
    public string? Comment { get; init; }
}

/// <summary>What a job asks of one node. Memory in MiB; a null partition means the cluster's default one.</summary>
internal sealed record SlurmResources(int Gpus, int CpusPerTask, long MemoryMiB, TimeSpan TimeLimit, string? Partition = null);

/// <summary>The answer to a submission: the job id, and whether it was found already submitted under its name.</summary>
internal sealed record SlurmSubmission(long JobId, bool AlreadySubmitted);
