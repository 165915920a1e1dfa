using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Datasets;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Jobs;
using OrthancSeg.Worker.Training.Local;
using OrthancSeg.Worker.Training.Slurm;
using OrthancSeg.Worker.Workflows;

namespace OrthancSeg.Worker.Training;

/// <summary>How a step's process or Slurm job ended.</summary>
internal enum StepOutcome
{
    Succeeded,
    Failed,
    Cancelled,
}

internal sealed record StepResult(StepOutcome Outcome, int? ExitCode, string? Error);

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
    IOptions<LocalOptions> localOptions,
    LocalResources localResources,
    LocalProcessLauncher launcher,
    SlurmClient slurm,
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
        var result = run.Backend == "slurm"
            ? await RunOnSlurmAsync(run, step, command, runDirectory, cancellationToken)
            : await RunLocallyAsync(run, step, command, runDirectory, cancellationToken);

        switch (result.Outcome)
        {
            case StepOutcome.Succeeded:
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
            case StepOutcome.Failed:
                LogStepFailed(logger, run.Id, step.Name, result.ExitCode, result.Error ?? "");
                await CancelJobsAsync(await store.FailStepAsync(step.Id, result.ExitCode, result.Error ?? "failed", cancellationToken), cancellationToken);
                break;
            case StepOutcome.Cancelled:
                await CancelJobsAsync(await store.CancelStepAsync(step.Id, result.Error ?? "cancelled", result.ExitCode, cancellationToken), cancellationToken);
                break;
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
        int? exitCode = null;
        if (run.Backend == "slurm")
        {
            if (long.TryParse(step.BackendJobId, NumberStyles.None, CultureInfo.InvariantCulture, out var slurmJob))
            {
                await slurm.CancelAsync(slurmJob, cancellationToken);
            }
        }
        else
        {
            if (step.RunDirectory is { } directory && LocalProcessLauncher.Attach(directory, run.TimeLimit) is { } process)
            {
                exitCode = (await process.CancelAsync(localOptions.Value.KillGracePeriod, cancellationToken)).ExitCode;
            }
            (await localResources.LedgerAsync(cancellationToken)).Release(LedgerKey(run, step));
        }
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

    private async Task<StepResult> RunLocallyAsync(TrainingRunRecord run, TrainingStepRecord step, NnUnetCommand command, string runDirectory,
        CancellationToken cancellationToken)
    {
        var ledger = await localResources.LedgerAsync(cancellationToken);
        var key = LedgerKey(run, step);
        var gpus = step.Kind == TrainingStore.Preprocess ? 0 : run.Gpus;
        var process = step.RunDirectory is { } previous ? LocalProcessLauncher.Attach(previous, run.TimeLimit) : null;
        if (process is not null)
        {
            // Started by an earlier attempt (this worker's predecessor): follow it, holding the GPUs it was given.
            if (!ledger.Admitted.Any(a => a.JobKey == key))
            {
                ledger.Restore(new LocalAllocation(key, [.. (step.GpusGiven ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries)], run.Cpus, run.MemoryMiB));
            }
            LogReattached(logger, run.Id, step.Name, process.ProcessGroupId);
        }
        else
        {
            // A folder where a start was begun but left no pid file held a process that is lost; the step starts afresh elsewhere.
            var directory = step.RunDirectory is { } unused && !LocalProcessLauncher.WasLaunched(unused)
                ? unused
                : Path.Combine(runDirectory, $"{step.Name}-{Guid.NewGuid().ToString("N")[..8]}");
            var allocation = await ledger.AdmitAsync(key, new LocalRequest(gpus, run.Cpus, run.MemoryMiB), cancellationToken);
            try
            {
                var log = Path.Combine(directory, "log.txt");
                await store.SetStepPlacementAsync(step.Id, Environment.MachineName, allocation.CudaVisibleDevices, directory, log, cancellationToken);
                process = await launcher.StartAsync(new LocalLaunchRequest
                {
                    Command = command.Program,
                    Arguments = command.Arguments,
                    Environment = command.Environment,
                    WorkingDirectory = runDirectory,
                    RunDirectory = directory,
                    LogPath = log,
                    Allocation = allocation,
                    TimeLimit = run.TimeLimit,
                }, cancellationToken);
            }
            catch
            {
                ledger.Release(key);
                throw;
            }
        }
        await store.SetStepBackendJobAsync(step.Id, process.ProcessGroupId.ToString(CultureInfo.InvariantCulture), running: true, Environment.MachineName,
            cancellationToken);
        // Cancelled here (an admin, a lost lease, a stopping worker), the process and its GPUs are left as they are: the end hook stops a
        // cancelled step's process tree and releases its GPUs, and a stopping worker's successor re-attaches to it.
        var exit = await process.WaitForExitAsync(cancellationToken);
        ledger.Release(key);
        var logPath = Path.Combine(process.RunDirectory, "log.txt");
        return exit.Outcome switch
        {
            LocalOutcome.Succeeded => new StepResult(StepOutcome.Succeeded, exit.ExitCode, null),
            LocalOutcome.Cancelled => new StepResult(StepOutcome.Cancelled, exit.ExitCode, "its process tree was stopped"),
            LocalOutcome.TimedOut => new StepResult(StepOutcome.Failed, exit.ExitCode,
                $"stopped at its time limit of {run.TimeLimit}; the end of its log:\n{LogTail(logPath)}"),
            LocalOutcome.Failed => new StepResult(StepOutcome.Failed, exit.ExitCode,
                (exit.Signal is { } signal ? $"killed by signal {signal}" : $"exited with code {exit.ExitCode}") + $"; the end of its log:\n{LogTail(logPath)}"),
            _ => throw new InvalidOperationException(
                $"the process of {step.Name} (process group {process.ProcessGroupId}) ended without an exit file: it was killed with its worker; it runs again"),
        };
    }

    private async Task<StepResult> RunOnSlurmAsync(TrainingRunRecord run, TrainingStepRecord step, NnUnetCommand command, string runDirectory,
        CancellationToken cancellationToken)
    {
        var directory = Path.Combine(runDirectory, step.Name);
        var log = Path.Combine(directory, "log.txt");
        var exitFile = Path.Combine(directory, "exit");
        var gpus = step.Kind == TrainingStore.Preprocess ? 0 : run.Gpus;
        long jobId;
        if (long.TryParse(step.BackendJobId, NumberStyles.None, CultureInfo.InvariantCulture, out var known))
        {
            jobId = known;
            LogReattached(logger, run.Id, step.Name, known);
        }
        else
        {
            IReadOnlyList<long> afterOk = [];
            if (step.Kind == TrainingStore.FoldStep)
            {
                var preprocess = (await store.StepsAsync(run.Id, cancellationToken)).Single(s => s.Kind == TrainingStore.Preprocess);
                afterOk = long.TryParse(preprocess.BackendJobId, NumberStyles.None, CultureInfo.InvariantCulture, out var dependency) ? [dependency]
                    : throw new InvalidOperationException($"preprocessing of training run {run.Id} has no Slurm job to depend on");
            }
            Directory.CreateDirectory(directory);
            await store.SetStepPlacementAsync(step.Id, "", gpus == 0 ? "" : gpus.ToString(CultureInfo.InvariantCulture), directory, log, cancellationToken);
            // The name is the piece of work: a retried submission (this attempt's sbatch timed out, or its worker died before recording
            // the id) finds the job already submitted instead of submitting a second one. The run's creation time (ms) is in it because
            // run numbers are per database: another installation, or this one after its database was recreated, has a run 1 too.
            var submission = await slurm.SubmitAsync(new SlurmJobRequest
            {
                Name = SlurmJobName(run, step),
                Script = command.ToBatchScript(exitFile),
                OutputPath = log,
                WorkingDirectory = directory,
                Resources = new SlurmResources(gpus, run.Cpus, Math.Max(1, run.MemoryMiB), run.TimeLimit, run.Partition),
                AfterOk = afterOk,
                Comment = string.Create(CultureInfo.InvariantCulture, $"orthancseg training run {run.Id} {step.Name}"),
            }, cancellationToken);
            jobId = submission.JobId;
            await store.SetStepBackendJobAsync(step.Id, jobId.ToString(CultureInfo.InvariantCulture), running: false, null, cancellationToken);
        }
        if (step.Kind == TrainingStore.Preprocess)
        {
            // The folds are submitted now, held by Slurm until preprocessing succeeded (afterok).
            await EnqueueFoldsAsync(run, cancellationToken);
        }
        var markedRunning = false;
        while (true)
        {
            var job = await slurm.GetJobAsync(jobId, cancellationToken);
            if (job is null)
            {
                // Forgotten by a controller without accounting: the batch script's exit file says how it ended.
                return NnUnetCommand.ReadExitFile(exitFile) is { } ended
                    ? ended.ExitCode == 0 ? new StepResult(StepOutcome.Succeeded, 0, null)
                        : new StepResult(StepOutcome.Failed, ended.ExitCode, $"exited with code {ended.ExitCode}; the end of its log:\n{LogTail(log)}")
                    : new StepResult(StepOutcome.Failed, null, $"Slurm job {jobId} is unknown to Slurm and left no exit file");
            }
            if (!markedRunning && job.Phase is SlurmJobPhase.Running or SlurmJobPhase.Succeeded or SlurmJobPhase.Failed)
            {
                await store.SetStepBackendJobAsync(step.Id, jobId.ToString(CultureInfo.InvariantCulture), running: true, job.NodeList, cancellationToken);
                markedRunning = true;
            }
            switch (job.Phase)
            {
                case SlurmJobPhase.Succeeded:
                    return new StepResult(StepOutcome.Succeeded, job.ExitCode, null);
                case SlurmJobPhase.Failed:
                    return new StepResult(StepOutcome.Failed, job.ExitCode,
                        $"Slurm job {jobId} ended {job.State} (exit code {job.ExitCode}, signal {job.Signal}); the end of its log:\n{LogTail(log)}");
                case SlurmJobPhase.Cancelled:
                    return new StepResult(StepOutcome.Cancelled, job.ExitCode, $"Slurm job {jobId} was cancelled ({job.State})");
            }
            if (job.WillNeverStart)
            {
                await slurm.CancelAsync(jobId, cancellationToken);
                return new StepResult(StepOutcome.Failed, null, $"Slurm will never start job {jobId}: {job.Reason}");
            }
            await Task.Delay(_options.SlurmPollInterval, cancellationToken);
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

    internal string LogTail(string path)
    {
        try
        {
            var lines = File.ReadAllLines(path);
            return string.Join('\n', lines.Skip(Math.Max(0, lines.Length - _options.ErrorLogLines)));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return "(no log was written)";
        }
    }

    internal static string SlurmJobName(TrainingRunRecord run, TrainingStepRecord step) =>
        string.Create(CultureInfo.InvariantCulture, $"orthancseg-run{run.Id}-{run.CreatedAt.ToUnixTimeMilliseconds()}-{step.Name}");

    private static string LedgerKey(TrainingRunRecord run, TrainingStepRecord step) =>
        string.Create(CultureInfo.InvariantCulture, $"training-{run.Id}-{step.Name}");

    [GeneratedRegex(@"(?<![A-Za-z""])-?NaN(?![A-Za-z""])")]
    private static partial Regex BareNaN();

    [LoggerMessage(Level = LogLevel.Information, Message = "Training run {RunId}: re-attached to {Step}, still known as {BackendJobId}")]
    private static partial void LogReattached(ILogger logger, long runId, string step, long backendJobId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Training run {RunId}: {Step} failed with exit code {ExitCode}: {Error}")]
    private static partial void LogStepFailed(ILogger logger, long runId, string step, int? exitCode, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Training run {RunId} of workflow {Workflow} succeeded; model registered at {Location}")]
    private static partial void LogRunSucceeded(ILogger logger, long runId, string workflow, string location);
}
