using System.Text.RegularExpressions;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Worker.Errors;

namespace OrthancSeg.Worker.Training;

/// <summary>
/// What a training request may say, checked in one place for StartTraining and for a workflow's defaults, and how a request is laid over
/// the workflow's defaults: a field the request sets wins, else the workflow's, else the built-in default (applied by StartTraining).
/// </summary>
internal static partial class TrainingDefaultsRules
{
    public static readonly IReadOnlyList<string> AllFolds = ["0", "1", "2", "3", "4"];

    /// <summary>The request with every field it leaves unset taken from <paramref name="defaults"/> (null: no workflow defaults).</summary>
    public static StartTrainingRequest Apply(StartTrainingRequest request, TrainingDefaults? defaults)
    {
        var merged = request.Clone();
        if (defaults is null)
        {
            return merged;
        }
        merged.Configuration = Or(request.Configuration, defaults.Configuration);
        merged.Trainer = Or(request.Trainer, defaults.Trainer);
        merged.Plans = Or(request.Plans, defaults.Plans);
        // The planner belongs to the plans: a request naming other plans does not inherit the workflow's planner.
        merged.Planner = request.Planner.Length > 0 || request.Plans.Length > 0 ? request.Planner : defaults.Planner;
        if (request.Folds.Count == 0)
        {
            merged.Folds.AddRange(defaults.Folds);
        }
        if (request.Backend == TrainingBackend.Unspecified)
        {
            merged.Backend = defaults.Backend;
        }
        var asked = request.Resources ?? new TrainingResources();
        var fallback = defaults.Resources ?? new TrainingResources();
        var resources = new TrainingResources
        {
            Cpus = asked.Cpus > 0 ? asked.Cpus : fallback.Cpus,
            MemoryMib = asked.MemoryMib > 0 ? asked.MemoryMib : fallback.MemoryMib,
            TimeLimitSeconds = asked.TimeLimitSeconds > 0 ? asked.TimeLimitSeconds : fallback.TimeLimitSeconds,
            Partition = Or(asked.Partition, fallback.Partition),
        };
        if (asked.HasGpus)
        {
            resources.Gpus = asked.Gpus;
        }
        else if (fallback.HasGpus)
        {
            resources.Gpus = fallback.Gpus;
        }
        merged.Resources = resources;
        return merged;
    }

    /// <summary>Adds a problem for every field that no run could use; <paramref name="prefix"/> names where the fields sit ("" or "workflow.training_defaults.").</summary>
    public static void Check(string prefix, string configuration, string trainer, string plans, string planner, IReadOnlyList<string> folds,
        TrainingBackend backend, TrainingResources? resources, List<FieldProblem> problems)
    {
        if (configuration.Length > 0 && !NnUnetCommands.Configurations.Contains(configuration))
        {
            problems.Add(new(prefix + "configuration", $"'{configuration}' is not an nnU-Net configuration ({string.Join(", ", NnUnetCommands.Configurations)})"));
        }
        foreach (var (field, value) in new[] { ("trainer", trainer), ("plans", plans), ("planner", planner) })
        {
            if (value.Length > 0 && !Identifier().IsMatch(value))
            {
                problems.Add(new(prefix + field, $"'{value}' is not an nnU-Net class or plans name (letters, digits and _)"));
            }
        }
        foreach (var fold in folds.Where(f => f is not ("0" or "1" or "2" or "3" or "4" or "all")))
        {
            problems.Add(new(prefix + "folds", $"'{fold}' is out of range: folds are 0..4 or 'all'"));
        }
        if (folds.Distinct(StringComparer.Ordinal).Count() != folds.Count)
        {
            problems.Add(new(prefix + "folds", "a fold is named twice"));
        }
        if (backend is not (TrainingBackend.Unspecified or TrainingBackend.Local or TrainingBackend.Slurm))
        {
            problems.Add(new(prefix + "backend", $"{backend} is not a backend"));
        }
        if (resources is null)
        {
            return;
        }
        if (resources.Gpus < 0 || resources.Cpus < 0 || resources.MemoryMib < 0 || resources.TimeLimitSeconds < 0)
        {
            problems.Add(new(prefix + "resources", "GPUs, CPUs, memory and time limit cannot be negative"));
        }
        if (resources.Partition.Length > 0 && !Identifier().IsMatch(resources.Partition.Replace("-", "_", StringComparison.Ordinal)))
        {
            problems.Add(new(prefix + "resources.partition", $"'{resources.Partition}' is not a partition name"));
        }
    }

    /// <summary>InvalidArgument when a workflow's defaults or retrain policy could never be used.</summary>
    public static void Validate(TrainingDefaults? defaults, RetrainPolicy? policy)
    {
        var problems = new List<FieldProblem>();
        if (defaults is not null)
        {
            Check("workflow.training_defaults.", defaults.Configuration, defaults.Trainer, defaults.Plans, defaults.Planner, defaults.Folds, defaults.Backend,
                defaults.Resources, problems);
            if (defaults.Planner.Length > 0 && defaults.Plans.Length == 0)
            {
                problems.Add(new("workflow.training_defaults.planner", "a planner needs the plans it writes (plans)"));
            }
        }
        if (policy is { Enabled: true } && policy.MinNewLabels < 1)
        {
            problems.Add(new("workflow.retrain_policy.min_new_labels", $"{policy.MinNewLabels}: the policy needs at least 1 new label to fire"));
        }
        if (policy is not null && (policy.MinNewLabels < 0 || policy.MinIntervalSeconds < 0))
        {
            problems.Add(new("workflow.retrain_policy", "min_new_labels and min_interval_seconds cannot be negative"));
        }
        if (policy is not null && (double.IsNaN(policy.MinDiceImprovement) || Math.Abs(policy.MinDiceImprovement) > 1))
        {
            problems.Add(new("workflow.retrain_policy.min_dice_improvement", $"{policy.MinDiceImprovement} is not a Dice difference (-1..1)"));
        }
        if (problems.Count > 0)
        {
            throw new InvalidArgumentException(problems);
        }
    }

    private static string Or(string value, string fallback) => value.Length == 0 ? fallback : value;

    [GeneratedRegex("^[A-Za-z0-9_]{1,100}$", RegexOptions.CultureInvariant)]
    private static partial Regex Identifier();
}
