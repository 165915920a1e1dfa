using Microsoft.Extensions.Options;

namespace OrthancSeg.Worker.Training;

/// <summary>How training runs are dispatched (section OrthancSeg:Training); the backends have their own sections below it.</summary>
internal sealed class TrainingOptions
{
    public const string Section = "OrthancSeg:Training";

    /// <summary>The backend of a request that names none: "local" or "slurm".</summary>
    public string DefaultBackend { get; set; } = "local";

    /// <summary>
    /// Training steps this worker follows at once (its "training" job pool). A step waiting for local GPUs or a Slurm job holds a slot but
    /// no CPU, so this is an upper bound on queued and running steps, not on the machine's load: the local resources are admitted separately.
    /// </summary>
    public int Concurrency { get; set; } = 32;

    /// <summary>Attempts of a step's job. A step whose process exits non-zero fails at once (retrying nnU-Net does not help); attempts are
    /// spent only when a process was lost (its worker killed with it) or the backend answered with an error.</summary>
    public int MaxAttempts { get; set; } = 3;

    /// <summary>Where run folders (pid and exit files, logs) go; empty: orthancseg_training beside nnUNet_raw. On a Slurm cluster this
    /// must be on the file system the nodes share.</summary>
    public string RunsRoot { get; set; } = "";

    /// <summary>How often a Slurm step's state is read.</summary>
    public TimeSpan SlurmPollInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Lines of a failed step's (or prediction's) log kept in its error.</summary>
    public int ErrorLogLines { get; set; } = 20;

    /// <summary>How often the "retrain-check" job looks at the workflows whose retrain policy is on (one job per period while any is).</summary>
    public TimeSpan RetrainCheckInterval { get; set; } = TimeSpan.FromMinutes(1);

    public string ResolvedRunsRoot(string rawRoot) =>
        Path.GetFullPath(!string.IsNullOrWhiteSpace(RunsRoot) ? RunsRoot : Path.Combine(Path.GetDirectoryName(Path.GetFullPath(rawRoot))!, "orthancseg_training"));
}

internal sealed class TrainingOptionsValidator : IValidateOptions<TrainingOptions>
{
    public ValidateOptionsResult Validate(string? name, TrainingOptions options)
    {
        var problems = new List<string>();
        if (options.DefaultBackend is not ("local" or "slurm"))
        {
            problems.Add($"{TrainingOptions.Section}:DefaultBackend must be local or slurm, not '{options.DefaultBackend}'");
        }
        if (options.Concurrency is < 1 or > 10_000)
        {
            problems.Add($"{TrainingOptions.Section}:Concurrency must be 1..10000, not {options.Concurrency}");
        }
        if (options.MaxAttempts is < 1 or > 100)
        {
            problems.Add($"{TrainingOptions.Section}:MaxAttempts must be 1..100, not {options.MaxAttempts}");
        }
        if (!string.IsNullOrWhiteSpace(options.RunsRoot) && !Path.IsPathFullyQualified(options.RunsRoot))
        {
            problems.Add($"{TrainingOptions.Section}:RunsRoot must be an absolute path, not '{options.RunsRoot}'");
        }
        if (options.SlurmPollInterval < TimeSpan.FromMilliseconds(100) || options.SlurmPollInterval > TimeSpan.FromMinutes(10))
        {
            problems.Add($"{TrainingOptions.Section}:SlurmPollInterval must be 100 ms..10 min, not {options.SlurmPollInterval}");
        }
        if (options.ErrorLogLines is < 0 or > 1000)
        {
            problems.Add($"{TrainingOptions.Section}:ErrorLogLines must be 0..1000, not {options.ErrorLogLines}");
        }
        if (options.RetrainCheckInterval < TimeSpan.FromMilliseconds(100) || options.RetrainCheckInterval > TimeSpan.FromDays(1))
        {
            problems.Add($"{TrainingOptions.Section}:RetrainCheckInterval must be 100 ms..1 day, not {options.RetrainCheckInterval}");
        }
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
