using Microsoft.Extensions.Options;

namespace OrthancSeg.Worker.Training;

/// <summary>
/// How this site runs nnU-Net (section OrthancSeg:Training:NnUnet). The defaults run nnU-Net's own commands from
/// PATH; a site points them at its install with <see cref="BinDirectory"/> (a virtual environment's bin/),
/// <see cref="Wrapper"/> (a container: ["apptainer", "exec", "--nv", "/opt/nnunet.sif"]) and/or
/// <see cref="Setup"/> (shell lines first: "module load cuda/12.1", "source /opt/nnunet/bin/activate").
/// </summary>
internal sealed class NnUnetOptions
{
    public const string Section = "OrthancSeg:Training:NnUnet";

    public string PlanAndPreprocessCommand { get; set; } = "nnUNetv2_plan_and_preprocess";
    public string TrainCommand { get; set; } = "nnUNetv2_train";
    public string PredictCommand { get; set; } = "nnUNetv2_predict";

    /// <summary>Folder holding the commands (e.g. /opt/nnunet-venv/bin); empty: PATH.</summary>
    public string BinDirectory { get; set; } = "";

    /// <summary>Words put before every command (a container runtime and its image, `srun`, `nice`, …).</summary>
    public List<string> Wrapper { get; set; } = [];

    /// <summary>Shell lines run before every command, in bash; their environment reaches the command.</summary>
    public List<string> Setup { get; set; } = [];

    /// <summary>The nnUNet_preprocessed folder; empty: the nnUNet_preprocessed environment variable, else nnUNet_preprocessed beside nnUNet_raw.</summary>
    public string PreprocessedRoot { get; set; } = "";

    /// <summary>The nnUNet_results folder; empty: the nnUNet_results environment variable, else nnUNet_results beside nnUNet_raw.</summary>
    public string ResultsRoot { get; set; } = "";

    /// <summary>Extra environment for every command (e.g. nnUNet_compile=f on GPUs where torch.compile fails).</summary>
    public Dictionary<string, string> Environment { get; set; } = [];

    /// <summary>The three nnU-Net folders, nnUNet_raw given (the dataset exporter's RawRoot).</summary>
    public NnUnetPaths Paths(string rawRoot)
    {
        var raw = Path.GetFullPath(rawRoot);
        var parent = Path.GetDirectoryName(raw) ?? raw;
        return new NnUnetPaths(raw,
            Resolve(PreprocessedRoot, "nnUNet_preprocessed", Path.Combine(parent, "nnUNet_preprocessed")),
            Resolve(ResultsRoot, "nnUNet_results", Path.Combine(parent, "nnUNet_results")));
    }

    private static string Resolve(string configured, string variable, string fallback) =>
        Path.GetFullPath(!string.IsNullOrWhiteSpace(configured) ? configured
            : System.Environment.GetEnvironmentVariable(variable) is { Length: > 0 } fromEnvironment ? fromEnvironment
            : fallback);
}

internal sealed class NnUnetOptionsValidator : IValidateOptions<NnUnetOptions>
{
    public ValidateOptionsResult Validate(string? name, NnUnetOptions options)
    {
        var problems = new List<string>();
        foreach (var (key, value) in new[] { ("PlanAndPreprocessCommand", options.PlanAndPreprocessCommand), ("TrainCommand", options.TrainCommand),
                     ("PredictCommand", options.PredictCommand) })
        {
            if (string.IsNullOrWhiteSpace(value))
            {
                problems.Add($"{NnUnetOptions.Section}:{key} must name a command");
            }
        }
        if (!string.IsNullOrWhiteSpace(options.BinDirectory) && !Path.IsPathFullyQualified(options.BinDirectory))
        {
            problems.Add($"{NnUnetOptions.Section}:BinDirectory must be an absolute path, not '{options.BinDirectory}'");
        }
        if (options.Wrapper.Any(string.IsNullOrEmpty))
        {
            problems.Add($"{NnUnetOptions.Section}:Wrapper must not hold empty words");
        }
        foreach (var key in options.Environment.Keys.Where(k => k.Length == 0 || k.Contains('=', StringComparison.Ordinal) || k.Any(char.IsWhiteSpace)))
        {
            problems.Add($"{NnUnetOptions.Section}:Environment has an invalid variable name '{key}'");
        }
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}

/// <summary>nnUNet_raw, nnUNet_preprocessed and nnUNet_results, absolute.</summary>
internal sealed record NnUnetPaths(string Raw, string Preprocessed, string Results)
{
    /// <summary>$nnUNet_preprocessed/DatasetNNN_Name/splits_final.json, which nnU-Net reads at the start of training.</summary>
    public string SplitsFile(string datasetFolderName) => Path.Combine(Preprocessed, datasetFolderName, "splits_final.json");

    /// <summary>$nnUNet_results/DatasetNNN_Name/Trainer__Plans__configuration: the model folder nnUNetv2_train writes.</summary>
    public string ModelFolder(string datasetFolderName, string trainer, string plans, string configuration) =>
        Path.Combine(Results, datasetFolderName, $"{trainer}__{plans}__{configuration}");
}
