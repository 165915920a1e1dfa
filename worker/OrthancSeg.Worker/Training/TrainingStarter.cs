using Microsoft.Extensions.Options;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Worker.Datasets;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Jobs;
using OrthancSeg.Worker.Training.Local;
using OrthancSeg.Worker.Training.Slurm;
using OrthancSeg.Worker.Workflows;

namespace OrthancSeg.Worker.Training;

/// <summary>
/// Starts a training run, for StartTraining and for the retrain policy alike: lays the request over the workflow's defaults, checks that
/// it can ever run on its backend (refusing at once with the reason), records the run and queues its preprocessing.
/// </summary>
internal sealed class TrainingStarter(
    TrainingStore store,
    WorkflowStore workflows,
    WorkflowTrainingStore settings,
    SnapshotStore snapshots,
    JobQueue queue,
    NnUnetCommands commands,
    IOptions<NnUnetOptions> nnunetOptions,
    IOptions<TrainingOptions> options,
    LocalResources localResources,
    SlurmClient slurm)
{
    private const int DefaultGpus = 1;
    private const int DefaultCpus = 8;
    private const long DefaultMemoryMiB = 32_768;
    private static readonly TimeSpan DefaultTimeLimit = TimeSpan.FromHours(24);

    /// <summary>Returns the new run's number. <paramref name="triggerId"/>: the retrain trigger that asked for it, recorded with the run.</summary>
    public async Task<long> StartAsync(StartTrainingRequest asked, long? triggerId, CancellationToken ct)
    {
        if (asked.Workflow.Length == 0)
        {
            throw new InvalidArgumentException("workflow", "is required");
        }
        var workflow = await workflows.GetAsync(asked.Workflow, ct);
        var request = TrainingDefaultsRules.Apply(asked, (await settings.GetAsync(workflow.Id, ct)).Defaults);
        var snapshot = await SnapshotAsync(workflow, request.SnapshotId, ct);

        var problems = new List<FieldProblem>();
        var configuration = Or(request.Configuration, "3d_fullres");
        var trainer = Or(request.Trainer, "nnUNetTrainer");
        var plans = Or(request.Plans, "nnUNetPlans");
        var planner = request.Planner.Length == 0 ? null : request.Planner;
        List<string> folds = request.Folds.Count == 0 ? [.. TrainingDefaultsRules.AllFolds] : [.. request.Folds];
        TrainingDefaultsRules.Check("", configuration, trainer, plans, planner ?? "", folds, request.Backend, request.Resources, problems);
        if (problems.Count > 0)
        {
            throw new InvalidArgumentException(problems);
        }
        var backend = request.Backend switch
        {
            TrainingBackend.Local => "local",
            TrainingBackend.Slurm => "slurm",
            _ => options.Value.DefaultBackend,
        };
        var resources = request.Resources ?? new TrainingResources();
        if (folds.Any(f => f != "all") && snapshot.IncludedCount < CrossValidationSplits.FoldCount)
        {
            throw new FailedPreconditionException($"Snapshot {snapshot.Id} has {snapshot.IncludedCount} case(s); {CrossValidationSplits.FoldCount}-fold "
                + "cross-validation needs at least 5. Train fold 'all' instead (--folds all)");
        }
        var model = new NnUnetModelSpec(workflow.DatasetId, workflow.DatasetName, configuration, trainer, plans);
        try
        {
            commands.PlanAndPreprocess(model, nnunetOptions.Value.Paths(Path.GetDirectoryName(snapshot.DatasetPath)!), 1, planner);
        }
        catch (ArgumentException e)
        {
            throw new InvalidArgumentException("planner", e.Message);
        }

        var gpus = resources.HasGpus ? resources.Gpus : DefaultGpus;
        var cpus = resources.Cpus;
        var memory = resources.MemoryMib;
        var time = resources.TimeLimitSeconds > 0 ? resources.TimeLimitSeconds : (long)DefaultTimeLimit.TotalSeconds;
        var partition = resources.Partition.Length == 0 ? null : resources.Partition;
        if (backend == "local")
        {
            // The defaults shrink to a smaller machine; an explicit request that cannot fit is refused.
            var ledger = await localResources.LedgerAsync(ct);
            cpus = cpus > 0 ? cpus : Math.Min(DefaultCpus, ledger.Capacity.Cpus);
            memory = memory > 0 ? memory : Math.Min(DefaultMemoryMiB, ledger.Capacity.MemoryMiB);
            var reason = ledger.WhyItCanNeverFit(new LocalRequest(gpus, cpus, memory)) ?? ledger.WhyItCanNeverFit(new LocalRequest(0, cpus, memory));
            if (reason is not null)
            {
                throw new FailedPreconditionException($"The local backend can never run this request: {reason}");
            }
        }
        else
        {
            cpus = cpus > 0 ? cpus : DefaultCpus;
            memory = memory > 0 ? memory : DefaultMemoryMiB;
            try
            {
                await slurm.EnsureCanEverRunAsync(new SlurmResources(gpus, cpus, memory, TimeSpan.FromSeconds(time), partition), ct);
                await slurm.EnsureCanEverRunAsync(new SlurmResources(0, cpus, memory, TimeSpan.FromSeconds(time), partition), ct);
            }
            catch (SlurmRequestRefusedException e)
            {
                throw new FailedPreconditionException($"Slurm can never run this request: {e.Message}");
            }
        }

        var runId = await store.CreateRunAsync(new TrainingRunSpec(workflow.Id, snapshot.Id, configuration, trainer, plans, planner, folds, backend,
            gpus, cpus, memory, time, partition), triggerId, ct);
        await QueuePreprocessingAsync(runId, ct);
        return runId;
    }

    /// <summary>Queues the run's preprocessing job unless it has one (the job's key makes a second call a no-op).</summary>
    public async Task QueuePreprocessingAsync(long runId, CancellationToken ct)
    {
        var preprocess = (await store.StepsAsync(runId, ct)).Single(s => s.Kind == TrainingStore.Preprocess);
        if (preprocess.JobId is null)
        {
            var job = await PreprocessHandler.EnqueueAsync(queue, runId, preprocess.Id, options.Value.MaxAttempts, ct);
            await store.SetStepJobAsync(preprocess.Id, job.Id.Value, ct);
        }
    }

    private async Task<SnapshotRecord> SnapshotAsync(Workflows.Workflow workflow, long snapshotId, CancellationToken ct)
    {
        if (snapshotId < 0)
        {
            throw new InvalidArgumentException("snapshot_id", $"{snapshotId} is not a snapshot number");
        }
        if (snapshotId == 0)
        {
            return (await snapshots.ListAsync(workflow.Name, null, 1000, ct)).FirstOrDefault(s => s.State == SnapshotStore.Succeeded)
                ?? throw new FailedPreconditionException($"Workflow {workflow.Name} has no succeeded snapshot to train on; export one first (snapshots export)");
        }
        var snapshot = await snapshots.GetAsync(snapshotId, ct);
        if (snapshot.WorkflowId != workflow.Id)
        {
            throw new InvalidArgumentException("snapshot_id", $"snapshot {snapshotId} belongs to workflow {snapshot.Workflow}, not {workflow.Name}");
        }
        return snapshot.State == SnapshotStore.Succeeded ? snapshot
            : throw new FailedPreconditionException($"Snapshot {snapshotId} is {snapshot.State}, not succeeded: only a verified, finished snapshot can be trained on"
                + (snapshot.Error is { } error ? $" ({error})" : ""));
    }

    private static string Or(string value, string fallback) => value.Length == 0 ? fallback : value;
}
