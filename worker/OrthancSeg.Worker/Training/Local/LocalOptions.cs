using Microsoft.Extensions.Options;

namespace OrthancSeg.Worker.Training.Local;

/// <summary>The local backend: this machine's GPUs, CPUs and memory, and how its child processes are run (section OrthancSeg:Training:Local).</summary>
internal sealed class LocalOptions
{
    public const string Section = "OrthancSeg:Training:Local";

    /// <summary>
    /// The GPUs jobs may use, as CUDA_VISIBLE_DEVICES values (indices "0", "1" or UUIDs "GPU-…"). Empty: every GPU
    /// nvidia-smi lists; a machine without nvidia-smi has none and runs 0-GPU (CPU) requests only.
    /// </summary>
    public List<string> Gpus { get; set; } = [];

    /// <summary>nvidia-smi to ask when <see cref="Gpus"/> is empty; a name is looked up on PATH.</summary>
    public string NvidiaSmi { get; set; } = "nvidia-smi";

    /// <summary>CPUs jobs may use together; 0: every CPU of the machine.</summary>
    public int Cpus { get; set; }

    /// <summary>Memory jobs may use together, in MiB; 0: the machine's memory.</summary>
    public long MemoryMiB { get; set; }

    /// <summary>After SIGTERM on cancel or time limit, how long a job may take to stop before its process group gets SIGKILL.</summary>
    public TimeSpan KillGracePeriod { get; set; } = TimeSpan.FromSeconds(30);
}

internal sealed class LocalOptionsValidator : IValidateOptions<LocalOptions>
{
    public ValidateOptionsResult Validate(string? name, LocalOptions options)
    {
        var problems = new List<string>();
        if (options.Cpus < 0)
        {
            problems.Add($"{LocalOptions.Section}:Cpus must be 0 (all) or more, not {options.Cpus}");
        }
        if (options.MemoryMiB < 0)
        {
            problems.Add($"{LocalOptions.Section}:MemoryMiB must be 0 (all) or more, not {options.MemoryMiB}");
        }
        if (options.KillGracePeriod < TimeSpan.Zero || options.KillGracePeriod > TimeSpan.FromMinutes(10))
        {
            problems.Add($"{LocalOptions.Section}:KillGracePeriod must be 0..10 min, not {options.KillGracePeriod}");
        }
        if (options.Gpus.Any(g => string.IsNullOrWhiteSpace(g) || g.Contains(',', StringComparison.Ordinal)))
        {
            problems.Add($"{LocalOptions.Section}:Gpus entries must be single non-empty CUDA_VISIBLE_DEVICES values");
        }
        if (options.Gpus.Distinct(StringComparer.Ordinal).Count() != options.Gpus.Count)
        {
            problems.Add($"{LocalOptions.Section}:Gpus lists a GPU twice");
        }
        if (string.IsNullOrWhiteSpace(options.NvidiaSmi))
        {
            problems.Add($"{LocalOptions.Section}:NvidiaSmi must name nvidia-smi");
        }
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
