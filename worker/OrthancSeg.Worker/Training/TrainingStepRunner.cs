using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Datasets;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Jobs;
using OrthancSeg.Worker.Training.Backends;
using OrthancSeg.Worker.Training.Local;
using OrthancSeg.Worker.Workflows;

namespace OrthancSeg.Worker.Training;

/// <summary>
/// Runs one training step for its job handler, on the run's backend. The step row follows what happens: queued while it waits for
/// resources (local) or for Slurm, running once its process or Slurm job runs, then succeeded, failed (exit code and log tail) or cancelled.
/// A step's placement (run folder, GPUs) is recorded before its process starts, so the next attempt after a worker restart re-attaches
/// (local: pid and exit files; Slurm: the job id, or the job's deterministic name) instead of starting it again. An exit other than 0 is a
/// verdict: the step and its run fail and the job ends without retrying; only a lost process (killed with its worker) is run again.
/// </summary>
internal sealed partial class TrainingStepRunner(
    TrainingStore store,
    WorkflowStore workflows,
    SnapshotStore snapshots,
    JobQueue queue,
    JobRunner jobs,
    NnUnetCommands commands,
    IOptions<NnUnetOptions> nnunetOptions,
    IOptions<DatasetOptions> datasetOptions,
    IOptions<TrainingOptions> options,
    BackendRunner backend,
    ILogger<TrainingStepRunner> logger)
{
    public const string Pool = "training";

    private readonly TrainingOptions _options = options.Value;

    public async Task RunAsync(TrainingStepJob payload, JobAttempt attempt, CancellationToken cancellationToken)
    {
        var step = await store.GetStepAsync(payload.StepId, cancellationToken);
        var run = await store.GetRunAsync(step.RunId, cancellationToken);
        if (step.IsFinished)
        {
            // An earlier attempt recorded the outcome but not the job's end (a worker killed in between).
            return;
        }
        if (!run.IsActive)
        {
            await store.CancelStepAsync(step.Id, $"not run: training run {run.Id} is {run.State}", null, cancellationToken);
            return;
        }
        var (model, paths) = await ModelAsync(run, cancellationToken);
        NnUnetCommand command;
        if (step.Kind == TrainingStore.Preprocess)
        {
            await WriteSplitsAsync(run, model, paths, cancellationToken);
            command = commands.PlanAndPreprocess(model, paths, run.Cpus, run.Planner);
        }
        else
        {
            command = commands.Train(model, paths, step.Fold, run.Gpus, run.Cpus);
        }
        var runDirectory = Path.Combine(_options.ResolvedRunsRoot(paths.Raw), string.Create(CultureInfo.InvariantCulture, $"run-{run.Id}"));
        var result = await RunOnBackendAsync(run, step, command, runDirectory, cancellationToken);

        switch (result.Outcome)
        {
            case BackendOutcome.Succeeded:
                if (step.Kind == TrainingStore.Preprocess && run.Backend != "slurm")
                {
                    await EnqueueFoldsAsync(run, cancellationToken);
                }
                var location = paths.ModelFolder(model.DatasetFolderName, run.Trainer, run.Plans, run.Configuration);
                if (await store.SucceedStepAsync(step, result.ExitCode, attempt, () => ReadMetrics(location, run.Folds), cancellationToken))
                {
                    LogRunSucceeded(logger, run.Id, run.Workflow, location);
                }
                break;
            case BackendOutcome.Failed:
                LogStepFailed(logger, run.Id, step.Name, result.ExitCode, result.Error ?? "");
                await CancelJobsAsync(await store.FailStepAsync(step.Id, result.ExitCode, result.Error ?? "failed", cancellationToken), cancellationToken);
                break;
            case BackendOutcome.Cancelled:
                await CancelJobsAsync(await store.CancelStepAsync(step.Id, result.Error ?? "cancelled", result.ExitCode, cancellationToken), cancellationToken);
                break;
            default:
                throw new InvalidOperationException(
                    $"the process of {step.Name} (process group {result.BackendJobId}) ended without an exit file: it was killed with its worker; it runs again");
        }
    }

    /// <summary>
    /// The step's job ended cancelled or dead: its process tree is stopped (or its Slurm job scancelled), its GPUs released, and the step
    /// (and the run, unless it already ended) marked cancelled or failed.
    /// </summary>
    public async Task EndAsync(TrainingStepJob payload, JobEnding ending, CancellationToken cancellationToken)
    {
        var step = await store.GetStepAsync(payload.StepId, cancellationToken);
        var run = await store.GetRunAsync(step.RunId, cancellationToken);
        var exitCode = await backend.StopAsync(run.Backend, step.RunDirectory, step.BackendJobId, run.TimeLimit, LedgerKey(run, step), cancellationToken);
        if (ending.Cancelled)
        {
            await CancelJobsAsync(await store.CancelStepAsync(step.Id, ending.Error, exitCode, cancellationToken), cancellationToken);
        }
        else
        {
            await CancelJobsAsync(await store.FailStepAsync(step.Id, exitCode, ending.Error, cancellationToken), cancellationToken);
        }
    }

    /// <summary>Queues the run's fold jobs (idempotent: a job's key is its run and fold).</summary>
    private async Task EnqueueFoldsAsync(TrainingRunRecord run, CancellationToken cancellationToken)
    {
        foreach (var fold in (await store.StepsAsync(run.Id, cancellationToken)).Where(s => s.Kind == TrainingStore.FoldStep && !s.IsFinished))
        {
            var job = await TrainFoldHandler.EnqueueAsync(queue, run.Id, fold, _options.MaxAttempts, cancellationToken);
            await store.SetStepJobAsync(fold.Id, job.Id.Value, cancellationToken);
        }
    }

    private async Task CancelJobsAsync(IReadOnlyList<long> jobIds, CancellationToken cancellationToken)
    {
        foreach (var id in jobIds)
        {
            try
            {
                await queue.RequestCancelAsync(new JobId(id), cancellationToken);
                jobs.CancelLocal(new JobId(id));
            }
            catch (FailedPreconditionException)
            {
                // It ended meanwhile.
            }
        }
    }

    private async Task<(NnUnetModelSpec Model, NnUnetPaths Paths)> ModelAsync(TrainingRunRecord run, CancellationToken cancellationToken)
    {
        var workflow = await workflows.GetAsync(run.Workflow, cancellationToken);
        var snapshot = await snapshots.GetAsync(run.SnapshotId, cancellationToken);
        var rawRoot = Path.GetDirectoryName(snapshot.DatasetPath) ?? datasetOptions.Value.ResolvedRawRoot();
        return (new NnUnetModelSpec(workflow.DatasetId, workflow.DatasetName, run.Configuration, run.Trainer, run.Plans), nnunetOptions.Value.Paths(rawRoot));
    }

    /// <summary>
    /// splits_final.json for the snapshot's cases, before preprocessing (its --clean redoes the fingerprint and the preprocessed data, not
    /// the splits). A case keeps the validation fold the previous splits gave it; new cases are placed in an order seeded by the workflow.
    /// </summary>
    private async Task WriteSplitsAsync(TrainingRunRecord run, NnUnetModelSpec model, NnUnetPaths paths, CancellationToken cancellationToken)
    {
        if (run.Folds.All(f => f == "all"))
        {
            return;
        }
        var cases = (await snapshots.CasesAsync(run.SnapshotId, cancellationToken)).Select(c => c.CaseKey).ToList();
        var file = paths.SplitsFile(model.DatasetFolderName);
        var previous = File.Exists(file) ? CrossValidationSplits.ValidationFolds(CrossValidationSplits.Read(file)) : null;
        CrossValidationSplits.Write(file, CrossValidationSplits.Build(cases, run.Workflow, previous));
    }

    /// <summary>
    /// The step on the run's backend through <see cref="BackendRunner"/>. Locally its folder is the one an earlier attempt recorded while that
    /// holds its process, or was begun without starting one; a folder where a start was begun but left no pid file held a process that is
    /// lost, so the step starts afresh in a new one. On Slurm a fold is held by afterok until preprocessing succeeded.
    /// </summary>
    private async Task<BackendResult> RunOnBackendAsync(TrainingRunRecord run, TrainingStepRecord step, NnUnetCommand command, string runDirectory,
        CancellationToken cancellationToken)
    {
        string directory;
        IReadOnlyList<long> afterOk = [];
        if (run.Backend == "slurm")
        {
            directory = Path.Combine(runDirectory, step.Name);
            if (step.Kind == TrainingStore.FoldStep && !long.TryParse(step.BackendJobId, NumberStyles.None, CultureInfo.InvariantCulture, out _))
            {
                var preprocess = (await store.StepsAsync(run.Id, cancellationToken)).Single(s => s.Kind == TrainingStore.Preprocess);
                afterOk = long.TryParse(preprocess.BackendJobId, NumberStyles.None, CultureInfo.InvariantCulture, out var dependency) ? [dependency]
                    : throw new InvalidOperationException($"preprocessing of training run {run.Id} has no Slurm job to depend on");
            }
        }
        else
        {
            directory = step.RunDirectory is { } previous
                && (LocalProcessLauncher.HoldsFollowableJob(previous) || !LocalProcessLauncher.WasLaunched(previous))
                ? previous
                : Path.Combine(runDirectory, $"{step.Name}-{Guid.NewGuid().ToString("N")[..8]}");
        }
        var gpus = step.Kind == TrainingStore.Preprocess ? 0 : run.Gpus;
        return await backend.RunAsync(new BackendRun
        {
            Backend = run.Backend,
            Command = command,
            Directory = directory,
            WorkingDirectory = runDirectory,
            Resources = new BackendResources(gpus, run.Cpus, run.MemoryMiB, run.TimeLimit, run.Partition),
            LedgerKey = LedgerKey(run, step),
            GpusGiven = step.GpusGiven,
            // The run's creation time (ms) is in the name because run numbers are per database: another installation, or this one after its
            // database was recreated, has a run 1 too.
            SlurmJobName = SlurmJobName(run, step),
            SlurmComment = string.Create(CultureInfo.InvariantCulture, $"orthancseg training run {run.Id} {step.Name}"),
            SlurmJobId = step.BackendJobId,
            AfterOk = afterOk,
            SlurmPollInterval = _options.SlurmPollInterval,
        }, new StepRecord(store, step, ct => EnqueueFoldsAsync(run, ct)), cancellationToken);
    }

    /// <summary>The step's row follows its backend run; on Slurm, preprocessing's submission queues the folds, held by afterok.</summary>
    private sealed class StepRecord(TrainingStore store, TrainingStepRecord step, Func<CancellationToken, Task> enqueueFolds) : IBackendRunRecord
    {
        public Task PlacedAsync(string directory, string logPath, string? host, string gpus, CancellationToken cancellationToken) =>
            store.SetStepPlacementAsync(step.Id, host ?? "", gpus, directory, logPath, cancellationToken);

        public async Task StartedAsync(string backendJobId, bool running, string? host, CancellationToken cancellationToken)
        {
            await store.SetStepBackendJobAsync(step.Id, backendJobId, running, host, cancellationToken);
            if (!running && step.Kind == TrainingStore.Preprocess)
            {
                // The folds are submitted now, held by Slurm until preprocessing succeeded (afterok).
                await enqueueFolds(cancellationToken);
            }
        }
    }

    /// <summary>
    /// The model's metrics from each fold's validation/summary.json: foreground_mean Dice and the Dice of each label, averaged over the folds
    /// that have one. nnU-Net writes NaN (a label absent from reference and prediction) as a bare NaN, which is not JSON; it counts as missing.
    /// </summary>
    internal static ModelSpec ReadMetrics(string location, IReadOnlyList<string> folds)
    {
        var means = new List<double>();
        var labels = new SortedDictionary<int, List<double>>();
        foreach (var fold in folds)
        {
            var file = Path.Combine(location, $"fold_{fold}", "validation", "summary.json");
            if (!File.Exists(file))
            {
                continue;
            }
            using var summary = JsonDocument.Parse(BareNaN().Replace(File.ReadAllText(file), "null"));
            if (summary.RootElement.TryGetProperty("foreground_mean", out var foreground) && Dice(foreground) is { } mean)
            {
                means.Add(mean);
            }
            if (summary.RootElement.TryGetProperty("mean", out var perLabel))
            {
                foreach (var label in perLabel.EnumerateObject())
                {
                    if (int.TryParse(label.Name, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && Dice(label.Value) is { } dice)
                    {
                        (labels.TryGetValue(value, out var list) ? list : labels[value] = []).Add(dice);
                    }
                }
            }
        }
        var labelJson = JsonSerializer.Serialize(labels.ToDictionary(l => l.Key.ToString(CultureInfo.InvariantCulture), l => l.Value.Average()));
        return new ModelSpec(location, means.Count > 0 ? means.Average() : null, labelJson);

        static double? Dice(JsonElement metrics) =>
            metrics.TryGetProperty("Dice", out var dice) && dice.ValueKind == JsonValueKind.Number ? dice.GetDouble() : null;
    }

    internal static string SlurmJobName(TrainingRunRecord run, TrainingStepRecord step) =>
        string.Create(CultureInfo.InvariantCulture, $"orthancseg-run{run.Id}-{run.CreatedAt.ToUnixTimeMilliseconds()}-{step.Name}");

    private static string LedgerKey(TrainingRunRecord run, TrainingStepRecord step) =>
        string.Create(CultureInfo.InvariantCulture, $"training-{run.Id}-{step.Name}");

    [GeneratedRegex(@"(?<![A-Za-z""])-?NaN(?![A-Za-z""])")]
    private static partial Regex BareNaN();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Training run {RunId}: {Step} failed with exit code {ExitCode}: {Error}")]
    private static partial void LogStepFailed(ILogger logger, long runId, string step, int? exitCode, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Training run {RunId} of workflow {Workflow} succeeded; model registered at {Location}")]
    private static partial void LogRunSucceeded(ILogger logger, long runId, string workflow, string location);
}
