using System.Globalization;
using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Training.Local;
using OrthancSeg.Worker.Training.Slurm;

namespace OrthancSeg.Worker.Training.Backends;

/// <summary>How a backend run ended.</summary>
internal enum BackendOutcome
{
    Succeeded,

    /// <summary>It ran and failed (exit code, signal, time limit, or a Slurm job that will never start): a verdict, not an accident.</summary>
    Failed,

    /// <summary>Stopped on purpose: its process tree was stopped, or its Slurm job scancelled.</summary>
    Cancelled,

    /// <summary>Its local process vanished without an exit file (killed with its worker): the result is unknown.</summary>
    Lost,
}

/// <summary>The end of a backend run: the exit code, and for anything but success the reason with the end of its log.</summary>
internal sealed record BackendResult(BackendOutcome Outcome, int? ExitCode, string? Error, string BackendJobId);

/// <summary>What one run asks of the backend: GPUs, CPUs and memory (MiB) at once, a time limit, and on Slurm the partition (null: default).</summary>
internal sealed record BackendResources(int Gpus, int Cpus, long MemoryMiB, TimeSpan TimeLimit, string? Partition = null)
{
    public LocalRequest Local => new(Gpus, Cpus, MemoryMiB);

    public SlurmResources Slurm => new(Gpus, Cpus, Math.Max(1, MemoryMiB), TimeLimit, Partition);
}

/// <summary>
/// Where the owner of a run (a training step, an inference) records in its own table what the runner does, so that the next attempt after a
/// worker restart finds the run again instead of starting it twice.
/// </summary>
internal interface IBackendRunRecord
{
    /// <summary>Before the process starts or the job is submitted: its folder, log, host (null on Slurm until it runs) and the GPUs given.</summary>
    Task PlacedAsync(string directory, string logPath, string? host, string gpus, CancellationToken cancellationToken);

    /// <summary>The backend's id (process group, Slurm job id), once known; <paramref name="running"/> once it runs, on <paramref name="host"/>.</summary>
    Task StartedAsync(string backendJobId, bool running, string? host, CancellationToken cancellationToken);
}

/// <summary>One nnU-Net command to run on a backend, and what an earlier attempt recorded of it.</summary>
internal sealed record BackendRun
{
    /// <summary>"local" or "slurm".</summary>
    public required string Backend { get; init; }

    public required NnUnetCommand Command { get; init; }

    /// <summary>
    /// The run's own folder: its log, its exit file, and locally its pid and cancel files. Locally, the runner re-attaches to a process
    /// started in it by an earlier attempt, else starts one there.
    /// </summary>
    public required string Directory { get; init; }

    /// <summary>The local process's working directory.</summary>
    public required string WorkingDirectory { get; init; }

    public required BackendResources Resources { get; init; }

    /// <summary>Its key in the local ledger, unique for the piece of work ("training-3-fold-0", "inference-7"); also how logs name it.</summary>
    public required string LedgerKey { get; init; }

    /// <summary>The GPUs an earlier attempt was given (CUDA_VISIBLE_DEVICES), held again when it re-attaches to a local process.</summary>
    public string? GpusGiven { get; init; }

    /// <summary>
    /// The Slurm job name, deterministic for the piece of work: a retried submission (an sbatch that timed out, a worker that died before
    /// recording the id) finds the job already submitted instead of submitting a second one.
    /// </summary>
    public required string SlurmJobName { get; init; }

    public string? SlurmComment { get; init; }

    /// <summary>The Slurm job an earlier attempt submitted for this run, to follow instead of submitting.</summary>
    public string? SlurmJobId { get; init; }

    /// <summary>Slurm jobs that must have succeeded before this one starts.</summary>
    public IReadOnlyList<long> AfterOk { get; init; } = [];

    public required TimeSpan SlurmPollInterval { get; init; }

    /// <summary>What the errors call the process ("nnUNetv2_predict"); null: they start with the verb ("exited with code 1").</summary>
    public string? Subject { get; init; }
}

/// <summary>
/// Runs one nnU-Net command on the local or Slurm backend, for a training step or a prediction. Locally: the request waits in the
/// <see cref="LocalResources"/> ledger until its GPUs, CPUs and memory fit, its placement is recorded, and <see cref="LocalProcessLauncher"/>
/// starts it with its own CUDA_VISIBLE_DEVICES under its time limit; or, after a worker restart, the runner re-attaches to the process an
/// earlier attempt started, holding the GPUs it was given. On Slurm: the job is submitted under its deterministic name (a retry never
/// submits twice) or followed by its recorded id, its phases polled, its exit file read when the controller forgot it, and a job Slurm will
/// never start is scancelled. Either way the outcome comes back with the exit code and, on failure, the end of its log.
/// </summary>
internal sealed partial class BackendRunner(
    LocalResources localResources,
    LocalProcessLauncher launcher,
    SlurmClient slurm,
    IOptions<LocalOptions> localOptions,
    IOptions<TrainingOptions> trainingOptions,
    ILogger<BackendRunner> logger)
{
    public const string LogFileName = "log.txt";

    public Task<BackendResult> RunAsync(BackendRun run, IBackendRunRecord record, CancellationToken cancellationToken) =>
        run.Backend == "slurm" ? RunOnSlurmAsync(run, record, cancellationToken) : RunLocallyAsync(run, record, cancellationToken);

    /// <summary>
    /// Stops a run whose job was cancelled or gave up: its local process tree (SIGTERM, then SIGKILL after the grace period) and its place in
    /// the ledger, or its Slurm job (scancel). Returns the local exit code when the process had one.
    /// </summary>
    public async Task<int?> StopAsync(string backend, string? directory, string? slurmJobId, TimeSpan timeLimit, string ledgerKey,
        CancellationToken cancellationToken)
    {
        if (backend == "slurm")
        {
            if (long.TryParse(slurmJobId, NumberStyles.None, CultureInfo.InvariantCulture, out var job))
            {
                await slurm.CancelAsync(job, cancellationToken);
            }
            return null;
        }
        int? exitCode = null;
        if (directory is not null && LocalProcessLauncher.Attach(directory, timeLimit) is { } process)
        {
            exitCode = (await process.CancelAsync(localOptions.Value.KillGracePeriod, cancellationToken)).ExitCode;
        }
        (await localResources.LedgerAsync(cancellationToken)).Release(ledgerKey);
        return exitCode;
    }

    /// <summary>Why the backend could never run a request of these resources, or null when it could once enough is free.</summary>
    public async Task<string?> WhyItCanNeverRunAsync(string backend, BackendResources resources, CancellationToken cancellationToken)
    {
        if (backend == "slurm")
        {
            try
            {
                await slurm.EnsureCanEverRunAsync(resources.Slurm, cancellationToken);
                return null;
            }
            catch (SlurmRequestRefusedException e)
            {
                return e.Message;
            }
        }
        return (await localResources.LedgerAsync(cancellationToken)).WhyItCanNeverFit(resources.Local);
    }

    private async Task<BackendResult> RunLocallyAsync(BackendRun run, IBackendRunRecord record, CancellationToken cancellationToken)
    {
        var ledger = await localResources.LedgerAsync(cancellationToken);
        var limit = run.Resources.TimeLimit;
        var process = LocalProcessLauncher.Attach(run.Directory, limit);
        if (process is not null)
        {
            // Started by an earlier attempt (this worker's predecessor): follow it, holding the GPUs it was given.
            if (!ledger.Admitted.Any(a => a.JobKey == run.LedgerKey))
            {
                ledger.Restore(new LocalAllocation(run.LedgerKey, [.. (run.GpusGiven ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries)],
                    run.Resources.Cpus, run.Resources.MemoryMiB));
            }
            LogReattached(logger, run.LedgerKey, process.ProcessGroupId);
        }
        else
        {
            var allocation = await ledger.AdmitAsync(run.LedgerKey, run.Resources.Local, cancellationToken);
            try
            {
                var log = Path.Combine(run.Directory, LogFileName);
                await record.PlacedAsync(run.Directory, log, Environment.MachineName, allocation.CudaVisibleDevices, cancellationToken);
                process = await launcher.StartAsync(new LocalLaunchRequest
                {
                    Command = run.Command.Program,
                    Arguments = run.Command.Arguments,
                    Environment = run.Command.Environment,
                    WorkingDirectory = run.WorkingDirectory,
                    RunDirectory = run.Directory,
                    LogPath = log,
                    Allocation = allocation,
                    TimeLimit = limit,
                }, cancellationToken);
            }
            catch
            {
                ledger.Release(run.LedgerKey);
                throw;
            }
        }
        var id = process.ProcessGroupId.ToString(CultureInfo.InvariantCulture);
        await record.StartedAsync(id, running: true, Environment.MachineName, cancellationToken);
        // Cancelled here (an admin, a lost lease, a stopping worker), the process and its GPUs are left as they are: the end hook stops a
        // cancelled run's process tree and releases its GPUs (StopAsync), and a stopping worker's successor re-attaches to it.
        var exit = await process.WaitForExitAsync(cancellationToken);
        ledger.Release(run.LedgerKey);
        var logPath = Path.Combine(process.RunDirectory, LogFileName);
        return exit.Outcome switch
        {
            LocalOutcome.Succeeded => new BackendResult(BackendOutcome.Succeeded, exit.ExitCode, null, id),
            LocalOutcome.Cancelled => new BackendResult(BackendOutcome.Cancelled, exit.ExitCode, "its process tree was stopped", id),
            LocalOutcome.TimedOut => new BackendResult(BackendOutcome.Failed, exit.ExitCode,
                $"{Was(run, "stopped")} at its time limit of {limit}; the end of its log:\n{LogTail(logPath)}", id),
            LocalOutcome.Failed => new BackendResult(BackendOutcome.Failed, exit.ExitCode,
                (exit.Signal is { } signal ? Was(run, $"killed by signal {signal}") : Did(run, $"exited with code {exit.ExitCode}"))
                + $"; the end of its log:\n{LogTail(logPath)}", id),
            _ => new BackendResult(BackendOutcome.Lost, null,
                $"{run.Subject ?? "its process"} (process group {id}) ended without an exit file: it was killed with its worker", id),
        };
    }

    private async Task<BackendResult> RunOnSlurmAsync(BackendRun run, IBackendRunRecord record, CancellationToken cancellationToken)
    {
        var log = Path.Combine(run.Directory, LogFileName);
        var exitFile = Path.Combine(run.Directory, "exit");
        long jobId;
        if (long.TryParse(run.SlurmJobId, NumberStyles.None, CultureInfo.InvariantCulture, out var known))
        {
            jobId = known;
            LogReattached(logger, run.LedgerKey, known);
        }
        else
        {
            Directory.CreateDirectory(run.Directory);
            await record.PlacedAsync(run.Directory, log, null, run.Resources.Gpus == 0 ? "" : run.Resources.Gpus.ToString(CultureInfo.InvariantCulture),
                cancellationToken);
            var submission = await slurm.SubmitAsync(new SlurmJobRequest
            {
                Name = run.SlurmJobName,
                Script = run.Command.ToBatchScript(exitFile),
                OutputPath = log,
                WorkingDirectory = run.Directory,
                Resources = run.Resources.Slurm,
                AfterOk = run.AfterOk,
                Comment = run.SlurmComment,
            }, cancellationToken);
            jobId = submission.JobId;
        }
        var id = jobId.ToString(CultureInfo.InvariantCulture);
        await record.StartedAsync(id, running: false, null, cancellationToken);
        var markedRunning = false;
        while (true)
        {
            var job = await slurm.GetJobAsync(jobId, cancellationToken);
            if (job is null)
            {
                // Forgotten by a controller without accounting: the batch script's exit file says how it ended.
                return NnUnetCommand.ReadExitFile(exitFile) is { } ended
                    ? ended.ExitCode == 0 ? new BackendResult(BackendOutcome.Succeeded, 0, null, id)
                        : new BackendResult(BackendOutcome.Failed, ended.ExitCode,
                            $"{Did(run, $"exited with code {ended.ExitCode}")}; the end of its log:\n{LogTail(log)}", id)
                    : new BackendResult(BackendOutcome.Failed, null, $"Slurm job {jobId} is unknown to Slurm and left no exit file", id);
            }
            if (!markedRunning && job.Phase is SlurmJobPhase.Running or SlurmJobPhase.Succeeded or SlurmJobPhase.Failed)
            {
                await record.StartedAsync(id, running: true, job.NodeList, cancellationToken);
                markedRunning = true;
            }
            switch (job.Phase)
            {
                case SlurmJobPhase.Succeeded:
                    return new BackendResult(BackendOutcome.Succeeded, job.ExitCode, null, id);
                case SlurmJobPhase.Failed:
                    return new BackendResult(BackendOutcome.Failed, job.ExitCode,
                        $"Slurm job {jobId} ended {job.State} (exit code {job.ExitCode}, signal {job.Signal}); the end of its log:\n{LogTail(log)}", id);
                case SlurmJobPhase.Cancelled:
                    return new BackendResult(BackendOutcome.Cancelled, job.ExitCode, $"Slurm job {jobId} was cancelled ({job.State})", id);
            }
            if (job.WillNeverStart)
            {
                await slurm.CancelAsync(jobId, cancellationToken);
                return new BackendResult(BackendOutcome.Failed, null, $"Slurm will never start job {jobId}: {job.Reason}", id);
            }
            await Task.Delay(run.SlurmPollInterval, cancellationToken);
        }
    }

    /// <summary>The last <see cref="TrainingOptions.ErrorLogLines"/> lines of a log, for an error.</summary>
    internal string LogTail(string path)
    {
        try
        {
            return string.Join('\n', File.ReadLines(path).TakeLast(trainingOptions.Value.ErrorLogLines));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return "(no log was written)";
        }
    }

    private static string Did(BackendRun run, string what) => run.Subject is null ? what : $"{run.Subject} {what}";

    private static string Was(BackendRun run, string what) => run.Subject is null ? what : $"{run.Subject} was {what}";

    [LoggerMessage(Level = LogLevel.Information, Message = "Re-attached to {LedgerKey}, still known as {BackendJobId}")]
    private static partial void LogReattached(ILogger logger, string ledgerKey, long backendJobId);
}
