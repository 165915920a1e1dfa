using Microsoft.Extensions.Options;

namespace OrthancSeg.Worker.Training.Slurm;

/// <summary>How the worker reaches Slurm (section OrthancSeg:Training:Slurm).</summary>
internal sealed class SlurmOptions
{
    public const string Section = "OrthancSeg:Training:Slurm";

    /// <summary>Folder of sbatch, squeue, scontrol, sacct, scancel and sinfo; empty: found on PATH.</summary>
    public string BinDirectory { get; set; } = "";

    /// <summary>slurm.conf to use (SLURM_CONF for the commands); empty: the commands' own default (or SLURM_CONF of the worker).</summary>
    public string ConfigFile { get; set; } = "";

    /// <summary>
    /// How long any one command may take. The commands themselves give up on an unreachable controller after
    /// MessageTimeout − 1 s (9 s by default); this bounds everything else (a hung munged, a stuck file system).
    /// </summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// sbatch --export. NONE (the default) keeps the worker's environment, and any secret in it, out of the job; the
    /// job script sets what nnU-Net needs. ALL passes the worker's environment on.
    /// </summary>
    public string Export { get; set; } = "NONE";

    /// <summary>How far back sacct looks for a job by name when accounting is on (squeue forgets finished jobs after MinJobAge).</summary>
    public TimeSpan AccountingLookback { get; set; } = TimeSpan.FromDays(30);

    public string Command(string name) => string.IsNullOrWhiteSpace(BinDirectory) ? name : Path.Combine(BinDirectory, name);
}

internal sealed class SlurmOptionsValidator : IValidateOptions<SlurmOptions>
{
    public ValidateOptionsResult Validate(string? name, SlurmOptions options)
    {
        var problems = new List<string>();
        if (options.CommandTimeout < TimeSpan.FromSeconds(1) || options.CommandTimeout > TimeSpan.FromMinutes(10))
        {
            problems.Add($"{SlurmOptions.Section}:CommandTimeout must be 1 s..10 min, not {options.CommandTimeout}");
        }
        if (options.Export is not ("NONE" or "ALL"))
        {
            problems.Add($"{SlurmOptions.Section}:Export must be NONE or ALL, not '{options.Export}'");
        }
        if (options.AccountingLookback <= TimeSpan.Zero)
        {
            problems.Add($"{SlurmOptions.Section}:AccountingLookback must be positive, not {options.AccountingLookback}");
        }
        if (!string.IsNullOrWhiteSpace(options.BinDirectory) && !Path.IsPathFullyQualified(options.BinDirectory))
        {
            problems.Add($"{SlurmOptions.Section}:BinDirectory must be an absolute path, not '{options.BinDirectory}'");
        }
        if (!string.IsNullOrWhiteSpace(options.ConfigFile) && !Path.IsPathFullyQualified(options.ConfigFile))
        {
            problems.Add($"{SlurmOptions.Section}:ConfigFile must be an absolute path, not '{options.ConfigFile}'");
        }
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
