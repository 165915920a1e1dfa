using Microsoft.Extensions.Options;

namespace OrthancSeg.Worker.Inference;

/// <summary>
/// How inference runs (section OrthancSeg:Inference): on the training backends (OrthancSeg:Training:Local and :Slurm) with the nnU-Net commands
/// of OrthancSeg:Training:NnUnet, each prediction asking for these resources.
/// </summary>
internal sealed class InferenceOptions
{
    public const string Section = "OrthancSeg:Inference";

    /// <summary>"local" or "slurm"; empty: OrthancSeg:Training:DefaultBackend.</summary>
    public string Backend { get; set; } = "";

    /// <summary>GPUs per prediction; 0 predicts on CPU (-device cpu), which nnU-Net supports but is slow.</summary>
    public int Gpus { get; set; } = 1;

    /// <summary>CPUs per prediction, shared by nnU-Net's preprocessing and export workers.</summary>
    public int Cpus { get; set; } = 2;

    public long MemoryMiB { get; set; } = 8192;

    public TimeSpan TimeLimit { get; set; } = TimeSpan.FromHours(1);

    /// <summary>The Slurm partition; empty: the cluster's default.</summary>
    public string Partition { get; set; } = "";

    /// <summary>Inferences this worker follows at once (its "inference" job pool); the backend's resources are admitted separately.</summary>
    public int Concurrency { get; set; } = 8;

    /// <summary>Attempts of an inference's job: a failing predictor, a prediction off the image grid or an upload Orthanc refuses is retried
    /// this often, then the job is a dead letter.</summary>
    public int MaxAttempts { get; set; } = 3;

    /// <summary>Where each attempt's folder (input image, prediction, log) goes; empty: orthancseg_inference beside nnUNet_raw. On a Slurm
    /// cluster this must be on the file system the nodes share.</summary>
    public string ScratchRoot { get; set; } = "";

    /// <summary>How often a Slurm prediction's state is read.</summary>
    public TimeSpan SlurmPollInterval { get; set; } = TimeSpan.FromSeconds(5);

    public string ResolvedScratchRoot(string rawRoot) =>
        Path.GetFullPath(!string.IsNullOrWhiteSpace(ScratchRoot) ? ScratchRoot : Path.Combine(Path.GetDirectoryName(Path.GetFullPath(rawRoot))!, "orthancseg_inference"));
}

internal sealed class InferenceOptionsValidator : IValidateOptions<InferenceOptions>
{
    public ValidateOptionsResult Validate(string? name, InferenceOptions options)
    {
        var problems = new List<string>();
        if (options.Backend is not ("" or "local" or "slurm"))
        {
            problems.Add($"{InferenceOptions.Section}:Backend must be local, slurm or empty, not '{options.Backend}'");
        }
        if (options.Gpus is < 0 or > 64)
        {
            problems.Add($"{InferenceOptions.Section}:Gpus must be 0..64, not {options.Gpus}");
        }
        if (options.Cpus is < 1 or > 1024)
        {
            problems.Add($"{InferenceOptions.Section}:Cpus must be 1..1024, not {options.Cpus}");
        }
        if (options.MemoryMiB < 0)
        {
            problems.Add($"{InferenceOptions.Section}:MemoryMiB must not be negative, not {options.MemoryMiB}");
        }
        if (options.TimeLimit < TimeSpan.FromSeconds(1) || options.TimeLimit > TimeSpan.FromDays(30))
        {
            problems.Add($"{InferenceOptions.Section}:TimeLimit must be 1 s..30 days, not {options.TimeLimit}");
        }
        if (options.Concurrency is < 1 or > 10_000)
        {
            problems.Add($"{InferenceOptions.Section}:Concurrency must be 1..10000, not {options.Concurrency}");
        }
        if (options.MaxAttempts is < 1 or > 100)
        {
            problems.Add($"{InferenceOptions.Section}:MaxAttempts must be 1..100, not {options.MaxAttempts}");
        }
        if (!string.IsNullOrWhiteSpace(options.ScratchRoot) && !Path.IsPathFullyQualified(options.ScratchRoot))
        {
            problems.Add($"{InferenceOptions.Section}:ScratchRoot must be an absolute path, not '{options.ScratchRoot}'");
        }
        if (options.SlurmPollInterval < TimeSpan.FromMilliseconds(100) || options.SlurmPollInterval > TimeSpan.FromMinutes(10))
        {
            problems.Add($"{InferenceOptions.Section}:SlurmPollInterval must be 100 ms..10 min, not {options.SlurmPollInterval}");
        }
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
