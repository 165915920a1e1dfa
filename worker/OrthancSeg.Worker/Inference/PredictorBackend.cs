using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Training;
using OrthancSeg.Worker.Training.Local;
using OrthancSeg.Worker.Training.Slurm;

namespace OrthancSeg.Worker.Inference;

/// <summary>How a predictor run ended: succeeded, or the reason it did not (exit code and the end of its log).</summary>
internal sealed record PredictorResult(bool Succeeded, int? ExitCode, string? Error, TimeSpan Elapsed);

/// <summary>
/// Runs nnUNetv2_predict for an inference on the training backends, with their resource handling: locally through the same
/// <see cref="LocalProcessLauncher"/> and GPU/CPU/memory ledger as training (a prediction waits until its request fits, gets its own
/// CUDA_VISIBLE_DEVICES, runs under its time limit, survives the worker), or as a Slurm batch job through the same <see cref="SlurmClient"/>.
/// The predictor's placement is recorded before it starts, so an attempt after a worker restart re-attaches to it instead of starting it again.
/// </summary>
internal sealed partial class PredictorBackend(
    InferenceStore store,
    LocalResources localResources,
    LocalProcessLauncher launcher,
    SlurmClient slurm,
    IOptions<LocalOptions> localOptions,
    IOptions<InferenceOptions> options,
    ILogger<PredictorBackend> logger)
{
    private const int LogLines = 20;

    private readonly InferenceOptions _options = options.Value;

    /// <summary>The predictor of this inference that an earlier attempt started in <see cref="InferenceRecord.RunDirectory"/>, if any.</summary>
    public static bool WasStarted(InferenceRecord inference) =>
        inference.RunDirectory is { } directory && (inference.Backend == "slurm" ? inference.BackendJobId is not null : LocalProcessLauncher.WasLaunched(directory));

    public async Task<PredictorResult> RunAsync(InferenceRecord inference, NnUnetCommand command, string directory, CancellationToken cancellationToken) =>
        inference.Backend == "slurm"
            ? await RunOnSlurmAsync(inference, command, directory, cancellationToken)
            : await RunLocallyAsync(inference, command, directory, cancellationToken);

    /// <summary>Stops the inference's predictor (process tree, or scancel) and gives its local resources back: its job was cancelled or gave up.</summary>
    public async Task StopAsync(InferenceRecord inference, CancellationToken cancellationToken)
    {
        if (inference.Backend == "slurm")
        {
            if (long.TryParse(inference.BackendJobId, NumberStyles.None, CultureInfo.InvariantCulture, out var job))
            {
                await slurm.CancelAsync(job, cancellationToken);
            }
            return;
        }
        if (inference.RunDirectory is { } directory && LocalProcessLauncher.Attach(directory, _options.TimeLimit) is { } process)
        {
            await process.CancelAsync(localOptions.Value.KillGracePeriod, cancellationToken);
        }
        (await localResources.LedgerAsync(cancellationToken)).Release(LedgerKey(inference));
    }

    /// <summary>Whether the backend could ever run a prediction with the configured resources; the reason when not.</summary>
    public async Task<string?> WhyItCanNeverRunAsync(string backend, CancellationToken cancellationToken)
    {
        if (backend == "slurm")
        {
            try
            {
                await slurm.EnsureCanEverRunAsync(Resources(), cancellationToken);
                return null;
            }
            catch (SlurmRequestRefusedException e)
            {
                return $"Slurm can never run a prediction with {InferenceOptions.Section}'s resources: {e.Message}";
            }
        }
        var reason = (await localResources.LedgerAsync(cancellationToken)).WhyItCanNeverFit(new LocalRequest(_options.Gpus, _options.Cpus, _options.MemoryMiB));
        return reason is null ? null : $"the local backend can never run a prediction with {InferenceOptions.Section}'s resources: {reason}";
    }

    private async Task<PredictorResult> RunLocallyAsync(InferenceRecord inference, NnUnetCommand command, string directory, CancellationToken cancellationToken)
    {
        var ledger = await localResources.LedgerAsync(cancellationToken);
        var key = LedgerKey(inference);
        var clock = Stopwatch.StartNew();
        var process = LocalProcessLauncher.Attach(directory, _options.TimeLimit);
        if (process is not null)
        {
            // Started by an earlier attempt (this worker's predecessor): follow it, holding the GPUs it was given.
            if (!ledger.Admitted.Any(a => a.JobKey == key))
            {
                ledger.Restore(new LocalAllocation(key, [.. (inference.GpusGiven ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries)], _options.Cpus,
                    _options.MemoryMiB));
            }
            LogReattachedLocal(logger, inference.Id, process.ProcessGroupId);
        }
        else
        {
            var allocation = await ledger.AdmitAsync(key, new LocalRequest(_options.Gpus, _options.Cpus, _options.MemoryMiB), cancellationToken);
            try
            {
                await store.SetPlacementAsync(inference.Id, directory, Environment.MachineName, allocation.CudaVisibleDevices, cancellationToken);
                process = await launcher.StartAsync(new LocalLaunchRequest
                {
                    Command = command.Program,
                    Arguments = command.Arguments,
                    Environment = command.Environment,
                    WorkingDirectory = directory,
                    RunDirectory = directory,
                    LogPath = Path.Combine(directory, "log.txt"),
                    Allocation = allocation,
                    TimeLimit = _options.TimeLimit,
                }, cancellationToken);
            }
            catch
            {
                ledger.Release(key);
                throw;
            }
        }
        await store.SetBackendJobAsync(inference.Id, process.ProcessGroupId.ToString(CultureInfo.InvariantCulture), Environment.MachineName, cancellationToken);
        // Cancelled here (an admin, a lost lease, a stopping worker), the process and its GPUs are left as they are: the end hook stops a
        // cancelled inference's process tree and releases its GPUs, and a stopping worker's successor re-attaches to it.
        var exit = await process.WaitForExitAsync(cancellationToken);
        ledger.Release(key);
        // Whole seconds are all the exit file knows; this attempt's own clock measures the (often sub-second) predictions it followed.
        var elapsed = clock.Elapsed;
        var log = Path.Combine(directory, "log.txt");
        return exit.Outcome switch
        {
            LocalOutcome.Succeeded => new PredictorResult(true, exit.ExitCode, null, elapsed),
            LocalOutcome.Cancelled => new PredictorResult(false, exit.ExitCode, "its process tree was stopped", elapsed),
            LocalOutcome.TimedOut => new PredictorResult(false, exit.ExitCode,
                $"nnUNetv2_predict was stopped at its time limit of {_options.TimeLimit}; the end of its log:\n{LogTail(log)}", elapsed),
            LocalOutcome.Failed => new PredictorResult(false, exit.ExitCode,
                (exit.Signal is { } signal ? $"nnUNetv2_predict was killed by signal {signal}" : $"nnUNetv2_predict exited with code {exit.ExitCode}")
                + $"; the end of its log:\n{LogTail(log)}", elapsed),
            _ => new PredictorResult(false, null,
                $"nnUNetv2_predict (process group {process.ProcessGroupId}) ended without an exit file: it was killed with its worker", elapsed),
        };
    }

    private async Task<PredictorResult> RunOnSlurmAsync(InferenceRecord inference, NnUnetCommand command, string directory, CancellationToken cancellationToken)
    {
        var log = Path.Combine(directory, "log.txt");
        var exitFile = Path.Combine(directory, "exit");
        var clock = Stopwatch.StartNew();
        long jobId;
        if (long.TryParse(inference.BackendJobId, NumberStyles.None, CultureInfo.InvariantCulture, out var known) && inference.RunDirectory == directory)
        {
            jobId = known;
            LogReattached(logger, inference.Id, inference.BackendJobId!);
        }
        else
        {
            Directory.CreateDirectory(directory);
            await store.SetPlacementAsync(inference.Id, directory, null, _options.Gpus == 0 ? "" : _options.Gpus.ToString(CultureInfo.InvariantCulture),
                cancellationToken);
            // The name is the piece of work: a retried submission finds the job already submitted instead of submitting a second one.
            var submission = await slurm.SubmitAsync(new SlurmJobRequest
            {
                Name = string.Create(CultureInfo.InvariantCulture,
                    $"orthancseg-inference{inference.Id}-{inference.CreatedAt.ToUnixTimeMilliseconds()}-a{inference.Attempts}"),
                Script = command.ToBatchScript(exitFile),
                OutputPath = log,
                WorkingDirectory = directory,
                Resources = Resources(),
                Comment = string.Create(CultureInfo.InvariantCulture, $"orthancseg inference {inference.Id} of case {inference.CaseKey}"),
            }, cancellationToken);
            jobId = submission.JobId;
        }
        await store.SetBackendJobAsync(inference.Id, jobId.ToString(CultureInfo.InvariantCulture), null, cancellationToken);
        while (true)
        {
            var job = await slurm.GetJobAsync(jobId, cancellationToken);
            if (job is null)
            {
                // Forgotten by a controller without accounting: the batch script's exit file says how it ended.
                return NnUnetCommand.ReadExitFile(exitFile) is { } ended
                    ? ended.ExitCode == 0 ? new PredictorResult(true, 0, null, clock.Elapsed)
                        : new PredictorResult(false, ended.ExitCode, $"nnUNetv2_predict exited with code {ended.ExitCode}; the end of its log:\n{LogTail(log)}", clock.Elapsed)
                    : new PredictorResult(false, null, $"Slurm job {jobId} is unknown to Slurm and left no exit file", clock.Elapsed);
            }
            switch (job.Phase)
            {
                case SlurmJobPhase.Succeeded:
                    return new PredictorResult(true, job.ExitCode, null, clock.Elapsed);
                case SlurmJobPhase.Failed:
                    return new PredictorResult(false, job.ExitCode,
                        $"Slurm job {jobId} ended {job.State} (exit code {job.ExitCode}, signal {job.Signal}); the end of its log:\n{LogTail(log)}", clock.Elapsed);
                case SlurmJobPhase.Cancelled:
                    return new PredictorResult(false, job.ExitCode, $"Slurm job {jobId} was cancelled ({job.State})", clock.Elapsed);
            }
            if (job.WillNeverStart)
            {
                await slurm.CancelAsync(jobId, cancellationToken);
                return new PredictorResult(false, null, $"Slurm will never start job {jobId}: {job.Reason}", clock.Elapsed);
            }
            await Task.Delay(_options.SlurmPollInterval, cancellationToken);
        }
    }

    private SlurmResources Resources() =>
        new(_options.Gpus, _options.Cpus, Math.Max(1, _options.MemoryMiB), _options.TimeLimit, _options.Partition.Length == 0 ? null : _options.Partition);

    private static string LedgerKey(InferenceRecord inference) => string.Create(CultureInfo.InvariantCulture, $"inference-{inference.Id}");

    private static string LogTail(string path)
    {
        try
        {
            return string.Join('\n', File.ReadLines(path).TakeLast(LogLines));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return "(no log was written)";
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Inference {InferenceId}: re-attached to its predictor, process group {ProcessGroupId}")]
    private static partial void LogReattachedLocal(ILogger logger, long inferenceId, int processGroupId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Inference {InferenceId}: re-attached to its predictor, still known as {BackendJobId}")]
    private static partial void LogReattached(ILogger logger, long inferenceId, string backendJobId);
}
