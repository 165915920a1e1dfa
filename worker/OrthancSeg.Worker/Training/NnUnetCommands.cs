using System.Globalization;
using System.Text;
using Microsoft.Extensions.Options;

namespace OrthancSeg.Worker.Training;

/// <summary>
/// One nnU-Net invocation: the argv (after the site's wrapper and setup), and the environment it needs. Runs as a
/// local child process through <see cref="Argv"/>, or in a Slurm batch script through <see cref="ToBatchScript"/>.
/// </summary>
internal sealed record NnUnetCommand(IReadOnlyList<string> Argv, IReadOnlyDictionary<string, string> Environment)
{
    /// <summary>The program to start; <see cref="Arguments"/> follow it.</summary>
    public string Program => Argv[0];

    public IReadOnlyList<string> Arguments => [.. Argv.Skip(1)];

    /// <summary>
    /// A bash batch script that sets the environment and runs the command; the job's exit code is the command's.
    /// With <paramref name="exitFile"/>, the script also writes "CODE END_EPOCH_SECONDS" there (aside, then renamed):
    /// without Slurm accounting, the controller forgets a job MinJobAge after it ended, and the file still says how
    /// it ended. A job killed by scancel or its time limit writes none, which reads as "ended without a result".
    /// </summary>
    public string ToBatchScript(string? exitFile = null)
    {
        var script = new StringBuilder("#!/bin/bash\n");
        foreach (var (key, value) in Environment.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            script.Append("export ").Append(key).Append('=').Append(ShellQuote(value)).Append('\n');
        }
        var command = string.Join(' ', Argv.Select(ShellQuote));
        if (exitFile is null)
        {
            script.Append("exec ").Append(command).Append('\n');
        }
        else
        {
            var file = ShellQuote(exitFile);
            var temporary = ShellQuote(exitFile + ".tmp");
            script.Append(command).Append('\n')
                .Append("code=$?\n")
                .Append($"echo \"$code $(date +%s)\" >{temporary} && mv {temporary} {file}\n")
                .Append("exit $code\n");
        }
        return script.ToString();
    }

    /// <summary>What <see cref="ToBatchScript"/> wrote to its exit file: exit code and end time; null while there is none.</summary>
    public static (int ExitCode, DateTimeOffset EndedAt)? ReadExitFile(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }
        var text = File.ReadAllText(path).Trim();
        var f = text.Split(' ');
        return f.Length == 2 && int.TryParse(f[0], NumberStyles.None, CultureInfo.InvariantCulture, out var code)
            && long.TryParse(f[1], NumberStyles.None, CultureInfo.InvariantCulture, out var ended)
            ? (code, DateTimeOffset.FromUnixTimeSeconds(ended))
            : throw new FormatException($"{path} holds '{text}', not 'CODE END'");
    }

    /// <summary>Single-quotes a word for sh/bash: every character literal, a quote as '"'"'.</summary>
    public static string ShellQuote(string word) => "'" + word.Replace("'", "'\"'\"'", StringComparison.Ordinal) + "'";
}

/// <summary>What to train or predict with, as nnU-Net names it.</summary>
internal sealed record NnUnetModelSpec(int DatasetId, string DatasetName, string Configuration, string Trainer = "nnUNetTrainer", string Plans = "nnUNetPlans")
{
    /// <summary>DatasetNNN_Name, the folder name under each of the three roots.</summary>
    public string DatasetFolderName => string.Create(CultureInfo.InvariantCulture, $"Dataset{DatasetId:D3}_{DatasetName}");
}

/// <summary>
/// Builds the nnU-Net command lines the training and inference jobs run, from this site's
/// <see cref="NnUnetOptions"/>: nnU-Net's own names on PATH by default, or the site's install, wrapper and setup.
/// Worker counts come from the job's CPU request, so nnU-Net never starts more processes than it was given CPUs.
/// </summary>
internal sealed class NnUnetCommands(IOptions<NnUnetOptions> options)
{
    private readonly NnUnetOptions _options = options.Value;

    // The planners of nnU-Net's residual-encoder presets (documentation/resenc_presets.md): planning with
    // nnUNetPlannerResEncL writes nnUNetResEncUNetLPlans, which train and predict then name with -p.
    private static readonly Dictionary<string, string?> PlannerOfPlans = new(StringComparer.Ordinal)
    {
        ["nnUNetPlans"] = null,
        ["nnUNetResEncUNetMPlans"] = "nnUNetPlannerResEncM",
        ["nnUNetResEncUNetLPlans"] = "nnUNetPlannerResEncL",
        ["nnUNetResEncUNetXLPlans"] = "nnUNetPlannerResEncXL",
    };

    public static readonly IReadOnlySet<string> Configurations = new HashSet<string>(StringComparer.Ordinal)
    {
        "2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres",
    };

    /// <summary>
    /// `nnUNetv2_plan_and_preprocess -d ID -c CONFIG --verify_dataset_integrity --clean -np N -npfp N [-pl PLANNER]`.
    /// --clean because every snapshot is new content under the same dataset id, and nnU-Net otherwise reuses the
    /// fingerprint of the previous one. A plans name other than the standard and ResEnc ones needs its planner named.
    /// </summary>
    public NnUnetCommand PlanAndPreprocess(NnUnetModelSpec model, NnUnetPaths paths, int cpus, string? planner = null)
    {
        Check(model);
        if (planner is null && !PlannerOfPlans.TryGetValue(model.Plans, out planner))
        {
            throw new ArgumentException($"plans '{model.Plans}' come from no planner nnU-Net ships ({string.Join(", ", PlannerOfPlans.Keys)}); name the planner too");
        }
        var workers = Workers(cpus).ToString(CultureInfo.InvariantCulture);
        List<string> arguments = ["-d", Id(model), "-c", model.Configuration, "--verify_dataset_integrity", "--clean", "-np", workers, "-npfp", workers];
        if (planner is not null)
        {
            arguments.AddRange(["-pl", planner]);
        }
        return Build(_options.PlanAndPreprocessCommand, arguments, Environment(paths));
    }

    /// <summary>
    /// `nnUNetv2_train ID CONFIG FOLD -tr T -p P [-device cpu] [--c]`. The GPU is chosen by CUDA_VISIBLE_DEVICES, never
    /// by -device (nnU-Net: "Do NOT use this to set which GPU ID!"); with 0 GPUs it trains on CPU. Data augmentation
    /// gets the CPUs but one, which the training loop itself keeps busy.
    /// </summary>
    public NnUnetCommand Train(NnUnetModelSpec model, NnUnetPaths paths, string fold, int gpus, int cpus, bool continueTraining = false)
    {
        Check(model);
        if (fold != "all" && !(int.TryParse(fold, NumberStyles.None, CultureInfo.InvariantCulture, out var number) && number is >= 0 and <= 4))
        {
            throw new ArgumentException($"fold must be 0..4 or 'all', not '{fold}'", nameof(fold));
        }
        List<string> arguments = [Id(model), model.Configuration, fold, "-tr", model.Trainer, "-p", model.Plans];
        if (gpus == 0)
        {
            arguments.AddRange(["-device", "cpu"]);
        }
        if (continueTraining)
        {
            arguments.Add("--c");
        }
        var environment = Environment(paths);
        environment["nnUNet_n_proc_DA"] = Math.Max(1, cpus - 1).ToString(CultureInfo.InvariantCulture);
        return Build(_options.TrainCommand, arguments, environment);
    }

    /// <summary>
    /// `nnUNetv2_predict -i IN -o OUT -d ID -c CONFIG -f F… -tr T -p P -npp N -nps N [-device cpu]`: the CPUs are
    /// shared between preprocessing and export workers.
    /// </summary>
    public NnUnetCommand Predict(NnUnetModelSpec model, NnUnetPaths paths, string inputFolder, string outputFolder, IReadOnlyList<string> folds,
        int gpus, int cpus)
    {
        Check(model);
        if (folds.Count == 0)
        {
            throw new ArgumentException("prediction needs at least one fold", nameof(folds));
        }
        var workers = Math.Max(1, Workers(cpus) / 2).ToString(CultureInfo.InvariantCulture);
        List<string> arguments = ["-i", inputFolder, "-o", outputFolder, "-d", Id(model), "-c", model.Configuration, "-f", .. folds,
            "-tr", model.Trainer, "-p", model.Plans, "-npp", workers, "-nps", workers];
        if (gpus == 0)
        {
            arguments.AddRange(["-device", "cpu"]);
        }
        return Build(_options.PredictCommand, arguments, Environment(paths));
    }

    /// <summary>The environment every nnU-Net command needs: the three folders, and what the site adds.</summary>
    public Dictionary<string, string> Environment(NnUnetPaths paths)
    {
        var environment = new Dictionary<string, string>(_options.Environment, StringComparer.Ordinal)
        {
            ["nnUNet_raw"] = paths.Raw,
            ["nnUNet_preprocessed"] = paths.Preprocessed,
            ["nnUNet_results"] = paths.Results,
        };
        return environment;
    }

    private NnUnetCommand Build(string command, IReadOnlyList<string> arguments, Dictionary<string, string> environment)
    {
        var program = string.IsNullOrWhiteSpace(_options.BinDirectory) || Path.IsPathFullyQualified(command)
            ? command
            : Path.Combine(_options.BinDirectory, command);
        List<string> argv = [.. _options.Wrapper, program, .. arguments];
        if (_options.Setup.Count > 0)
        {
            // The setup lines run in the same bash that then becomes the command, so what they export reaches it.
            argv = ["/bin/bash", "-c", string.Join('\n', [.. _options.Setup, "exec \"$@\""]), "orthancseg-nnunet", .. argv];
        }
        return new NnUnetCommand(argv, environment);
    }

    private static void Check(NnUnetModelSpec model)
    {
        if (model.DatasetId is < 1 or > 999)
        {
            throw new ArgumentException($"nnU-Net dataset ids are 1..999, not {model.DatasetId}");
        }
        if (!Configurations.Contains(model.Configuration))
        {
            throw new ArgumentException($"unknown nnU-Net configuration '{model.Configuration}' (known: {string.Join(", ", Configurations)})");
        }
    }

    private static string Id(NnUnetModelSpec model) => model.DatasetId.ToString(CultureInfo.InvariantCulture);

    private static int Workers(int cpus) => Math.Max(1, cpus);
}
