using System.CommandLine;
using System.Globalization;
using OrthancSeg.Cli.Connection;
using OrthancSeg.Cli.Output;
using OrthancSeg.Contracts.V1;

namespace OrthancSeg.Cli.Commands;

/// <summary>
/// The training flags shared by `training start` (a request) and `workflows create|update` (the workflow's defaults): a flag left out
/// is left unset, so the workflow's default (or the built-in one) applies.
/// </summary>
internal sealed class TrainingFlags
{
    private readonly Option<string?> _configuration = new("--configuration") { Description = "nnU-Net configuration (default 3d_fullres)" };
    private readonly Option<string?> _folds = new("--folds") { Description = "Folds: a list such as 0,1,2,3,4 (the default), or all (one model on every case)" };
    private readonly Option<string?> _trainer = new("--trainer") { Description = "nnU-Net trainer (default nnUNetTrainer)" };
    private readonly Option<string?> _plans = new("--plans") { Description = "nnU-Net plans (default nnUNetPlans; e.g. nnUNetResEncUNetMPlans)" };
    private readonly Option<string?> _planner = new("--planner") { Description = "The planner for plans nnU-Net cannot derive" };
    private readonly Option<string?> _backend = new("--backend") { Description = "local or slurm (default: the worker's)" };
    private readonly Option<int?> _gpus = new("--gpus") { Description = "GPUs per fold, 0 trains on CPU (default 1)" };
    private readonly Option<int?> _cpus = new("--cpus") { Description = "CPUs per step (default 8, at most the local backend's)" };
    private readonly Option<string?> _memory = new("--memory") { Description = "Memory per step, e.g. 32G or 16000M (default 32G, at most the local backend's)" };
    private readonly Option<string?> _time = new("--time") { Description = "Time limit per step, [D-]HH:MM:SS (default 24:00:00)" };
    private readonly Option<string?> _partition = new("--partition") { Description = "Slurm partition (default: the cluster's)" };

    public TrainingFlags() => _backend.CompletionSources.Add("local", "slurm");

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { _configuration, _folds, _trainer, _plans, _planner, _backend, _gpus, _cpus, _memory, _time, _partition })
        {
            command.Options.Add(option);
        }
    }

    /// <summary>True when any of the flags was given.</summary>
    public bool AnyGiven(ParseResult parseResult) =>
        new Option[] { _configuration, _folds, _trainer, _plans, _planner, _backend, _gpus, _cpus, _memory, _time, _partition }
            .Any(o => parseResult.GetResult(o) is { Implicit: false });

    /// <summary>The flags given, laid over <paramref name="current"/> (a copy; null: nothing set yet).</summary>
    public TrainingDefaults Read(ParseResult parseResult, TrainingDefaults? current)
    {
        var result = current?.Clone() ?? new TrainingDefaults();
        result.Resources ??= new TrainingResources();
        result.Configuration = parseResult.GetValue(_configuration) ?? result.Configuration;
        result.Trainer = parseResult.GetValue(_trainer) ?? result.Trainer;
        result.Plans = parseResult.GetValue(_plans) ?? result.Plans;
        result.Planner = parseResult.GetValue(_planner) ?? result.Planner;
        if (parseResult.GetValue(_folds) is { } folds)
        {
            result.Folds.Clear();
            result.Folds.AddRange(folds.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        }
        if (parseResult.GetValue(_backend) is { } backend)
        {
            result.Backend = backend switch
            {
                "local" => TrainingBackend.Local,
                "slurm" => TrainingBackend.Slurm,
                _ => throw new CliException($"--backend {backend} is not a backend; use local or slurm", ExitCodes.Usage),
            };
        }
        if (parseResult.GetValue(_gpus) is { } gpus)
        {
            result.Resources.Gpus = gpus;
        }
        result.Resources.Cpus = parseResult.GetValue(_cpus) ?? result.Resources.Cpus;
        if (parseResult.GetValue(_memory) is { } memory)
        {
            result.Resources.MemoryMib = TrainingCommand.MemoryMiB(memory);
        }
        if (parseResult.GetValue(_time) is { } time)
        {
            result.Resources.TimeLimitSeconds = TrainingCommand.Seconds(time);
        }
        result.Resources.Partition = parseResult.GetValue(_partition) ?? result.Resources.Partition;
        return result;
    }

    /// <summary>A request carrying only the flags given.</summary>
    public void Fill(ParseResult parseResult, StartTrainingRequest request)
    {
        var given = Read(parseResult, null);
        request.Configuration = given.Configuration;
        request.Folds.AddRange(given.Folds);
        request.Trainer = given.Trainer;
        request.Plans = given.Plans;
        request.Planner = given.Planner;
        request.Backend = given.Backend;
        request.Resources = given.Resources;
    }

    /// <summary>"3d_fullres, folds all, 1 GPU, …" with only what is set; "built-in" when nothing is.</summary>
    public static string Describe(TrainingDefaults? d)
    {
        if (d is null)
        {
            return "built-in";
        }
        var parts = new List<string>();
        void Add(string what, string value)
        {
            if (value.Length > 0)
            {
                parts.Add($"{what} {value}");
            }
        }
        Add("configuration", d.Configuration);
        Add("folds", string.Join(',', d.Folds));
        Add("trainer", d.Trainer);
        Add("plans", d.Plans);
        Add("planner", d.Planner);
        Add("backend", d.Backend == TrainingBackend.Unspecified ? "" : Formatting.Word(d.Backend));
        if (d.Resources is { } r)
        {
            Add("GPUs", r.HasGpus ? Formatting.Number(r.Gpus) : "");
            Add("CPUs", r.Cpus > 0 ? Formatting.Number(r.Cpus) : "");
            Add("memory", r.MemoryMib > 0 ? string.Create(CultureInfo.InvariantCulture, $"{r.MemoryMib} MiB") : "");
            Add("time", r.TimeLimitSeconds > 0 ? TimeSpan.FromSeconds(r.TimeLimitSeconds).ToString() : "");
            Add("partition", r.Partition);
        }
        return parts.Count == 0 ? "built-in" : string.Join(", ", parts);
    }

    public static string Describe(RetrainPolicy? p) => p is not { Enabled: true }
        ? "off"
        : string.Create(CultureInfo.InvariantCulture, $"after {p.MinNewLabels} new accepted label(s), at most every {TimeSpan.FromSeconds(p.MinIntervalSeconds)}, ")
            + string.Create(CultureInfo.InvariantCulture, $"activate when mean Dice ≥ active {(p.MinDiceImprovement >= 0 ? "+" : "")}{p.MinDiceImprovement:0.####}; ")
            + string.Create(CultureInfo.InvariantCulture, $"{p.NewLabels} new now")
            + (p.LastTriggerTime is null ? "" : $"; last fired {Formatting.Time(p.LastTriggerTime)} ({p.LastTriggerState})");

    public static string Describe(ModelComparison? c) => c is null
        ? ""
        : string.Create(CultureInfo.InvariantCulture, $"{(c.Activated ? "activated" : "not activated")}: {c.Reason}")
            + (c.ActiveModelId == 0 ? "" : string.Create(CultureInfo.InvariantCulture, $" (compared with model {c.ActiveModelId})"));

    public static string Describe(TrainingEpoch? e) => e is null
        ? ""
        : string.Create(CultureInfo.InvariantCulture, $"epoch {e.Epoch}")
            + (e.HasTrainLoss ? string.Create(CultureInfo.InvariantCulture, $", train_loss {e.TrainLoss:0.####}") : "")
            + (e.HasValLoss ? string.Create(CultureInfo.InvariantCulture, $", val_loss {e.ValLoss:0.####}") : "")
            + (e.PseudoDice.Count > 0 ? $", pseudo Dice [{string.Join(", ", e.PseudoDice.Select(d => d.ToString("0.####", CultureInfo.InvariantCulture)))}]" : "")
            + (e.HasEpochSeconds ? string.Create(CultureInfo.InvariantCulture, $", {e.EpochSeconds:0.#} s") : "");
}

/// <summary>The retrain policy flags of `workflows create|update`.</summary>
internal sealed class RetrainFlags
{
    private readonly Option<string?> _retrain = new("--retrain") { Description = "The retrain policy: on or off" };
    private readonly Option<int?> _after = new("--retrain-after") { Description = "Retrain after this many newly accepted labels (default 1)" };
    private readonly Option<string?> _interval = new("--retrain-interval") { Description = "At most one policy run per this time, [D-]HH:MM:SS (default 0)" };
    private readonly Option<double?> _improvement = new("--min-dice-improvement")
    {
        Description = "Activate the new model when its mean Dice is at least the active one's plus this (default 0: not worse; may be negative)",
    };

    public RetrainFlags() => _retrain.CompletionSources.Add("on", "off");

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { _retrain, _after, _interval, _improvement })
        {
            command.Options.Add(option);
        }
    }

    public bool AnyGiven(ParseResult parseResult) =>
        new Option[] { _retrain, _after, _interval, _improvement }.Any(o => parseResult.GetResult(o) is { Implicit: false });

    /// <summary>The flags given laid over <paramref name="current"/>; giving any setting without --retrain keeps the policy's on/off.</summary>
    public RetrainPolicy Read(ParseResult parseResult, RetrainPolicy? current)
    {
        var result = new RetrainPolicy
        {
            Enabled = current?.Enabled ?? false,
            MinNewLabels = current is { MinNewLabels: > 0 } ? current.MinNewLabels : 1,
            MinIntervalSeconds = current?.MinIntervalSeconds ?? 0,
            MinDiceImprovement = current?.MinDiceImprovement ?? 0,
        };
        result.Enabled = parseResult.GetValue(_retrain) switch
        {
            null => result.Enabled,
            "on" => true,
            "off" => false,
            var other => throw new CliException($"--retrain {other}: use on or off", ExitCodes.Usage),
        };
        result.MinNewLabels = parseResult.GetValue(_after) ?? result.MinNewLabels;
        if (parseResult.GetValue(_interval) is { } interval)
        {
            result.MinIntervalSeconds = interval == "0" ? 0 : TrainingCommand.Seconds(interval);
        }
        result.MinDiceImprovement = parseResult.GetValue(_improvement) ?? result.MinDiceImprovement;
        return result;
    }
}
