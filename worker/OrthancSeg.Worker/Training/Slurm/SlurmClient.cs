using System.Globalization;
using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Errors;

namespace OrthancSeg.Worker.Training.Slurm;

/// <summary>
/// Everything the worker asks of Slurm: sbatch, squeue, scontrol, sacct, scancel and sinfo, run as processes with a
/// timeout, their output parsed by <see cref="SlurmOutput"/>. A controller that cannot be reached (or munge down,
/// commands missing or timed out) becomes a <see cref="UnavailableException"/> for "Slurm" within seconds,
/// which the job runner treats as an outage (no attempt spent) and gRPC as Unavailable; a request that can never run a
/// <see cref="SlurmRequestRefusedException"/> with the reason; any other error a <see cref="SlurmCommandException"/>.
/// </summary>
internal sealed partial class SlurmClient(IOptions<SlurmOptions> options, ILogger<SlurmClient> logger)
{
    /// <summary>The dependency name outages are reported under.</summary>
    public const string Dependency = "Slurm";

    private readonly SlurmOptions _options = options.Value;

    /// <summary>True when slurmctld answers (scontrol ping; it does not wait on a down controller).</summary>
    public async Task<bool> PingAsync(CancellationToken cancellationToken)
    {
        var result = await RunAsync("scontrol", ["ping"], cancellationToken: cancellationToken);
        return result.Succeeded && result.StandardOutput.Contains("is UP", StringComparison.Ordinal);
    }

    /// <summary>The partitions and, for each, its nodes with their CPUs, memory and GPUs.</summary>
    public async Task<IReadOnlyList<SlurmPartition>> GetPartitionsAsync(CancellationToken cancellationToken)
    {
        var result = await RunCheckedAsync("sinfo", ["--noheader", "--Node", $"--format={SlurmOutput.SinfoFormat}"], cancellationToken);
        return SlurmOutput.ParseSinfoNodes(result.StandardOutput);
    }

    /// <summary>The jobs of the worker's user that squeue knows now (pending, running, and recently ended ones).</summary>
    public async Task<IReadOnlyList<SlurmJob>> ListOwnJobsAsync(CancellationToken cancellationToken)
    {
        var result = await RunCheckedAsync("squeue", ["--noheader", "--me", $"--format={SlurmOutput.SqueueFormat}"], cancellationToken);
        return SlurmOutput.ParseSqueue(result.StandardOutput);
    }

    /// <summary>
    /// Refuses, with the reason, a request that no node of its partition could ever run; returns the partition it
    /// would run in. sbatch itself refuses too many GPUs or too much memory, but accepts more CPUs than any node has
    /// and leaves that job pending for ever (recorded: PENDING PartitionConfig), so the check is made here first.
    /// </summary>
    public async Task<SlurmPartition> EnsureCanEverRunAsync(SlurmResources resources, CancellationToken cancellationToken)
    {
        var partitions = await GetPartitionsAsync(cancellationToken);
        var (partition, reason) = WhereItCanRun(resources, partitions);
        return partition ?? throw new SlurmRequestRefusedException(reason!);
    }

    /// <summary>The partition a request would run in, or why it never could.</summary>
    internal static (SlurmPartition? Partition, string? Reason) WhereItCanRun(SlurmResources resources, IReadOnlyList<SlurmPartition> partitions)
    {
        if (resources.Gpus < 0 || resources.CpusPerTask < 1 || resources.MemoryMiB < 1 || resources.TimeLimit < TimeSpan.FromSeconds(1))
        {
            return (null, $"a Slurm job needs 0 or more GPUs, at least 1 CPU, 1 MiB and 1 s, not {resources.Gpus} GPU(s), "
                + $"{resources.CpusPerTask} CPU(s), {resources.MemoryMiB} MiB and {resources.TimeLimit}");
        }
        var partition = resources.Partition is { Length: > 0 } name
            ? partitions.FirstOrDefault(p => p.Name == name)
            : partitions.FirstOrDefault(p => p.IsDefault);
        var known = string.Join(", ", partitions.Select(p => p.Name));
        if (partition is null)
        {
            return (null, resources.Partition is { Length: > 0 }
                ? $"Slurm has no partition '{resources.Partition}' (it has: {known})"
                : $"no partition was requested and Slurm has no default partition (it has: {known})");
        }
        if (partition.MaxTime is { } maxTime && resources.TimeLimit > maxTime)
        {
            return (null, $"the time limit {resources.TimeLimit} is above partition '{partition.Name}''s maximum of {maxTime}");
        }
        if (partition.Nodes.Any(n => n.Gpus >= resources.Gpus && n.Cpus >= resources.CpusPerTask && n.MemoryMiB >= resources.MemoryMiB))
        {
            return (partition, null);
        }
        return (null, $"no node of partition '{partition.Name}' has {resources.Gpus} GPU(s), {resources.CpusPerTask} CPU(s) and "
            + $"{resources.MemoryMiB} MiB together; its largest have {partition.Nodes.Max(n => n.Gpus)} GPU(s), "
            + $"{partition.Nodes.Max(n => n.Cpus)} CPU(s), {partition.Nodes.Max(n => n.MemoryMiB)} MiB");
    }

    /// <summary>
    /// Submits the job unless a job of the same name was already submitted (by an attempt that died before it could
    /// record the id, or whose sbatch timed out after the controller had accepted it): then that job's id is
    /// returned and nothing is submitted. A name is therefore one piece of work; to run it again after it ended,
    /// submit under a new name.
    /// </summary>
    public async Task<SlurmSubmission> SubmitAsync(SlurmJobRequest request, CancellationToken cancellationToken)
    {
        ValidateName(request.Name);
        if (await FindByNameAsync(request.Name, cancellationToken) is { } existing)
        {
            LogFoundExisting(logger, request.Name, existing.JobId, existing.State);
            return new SlurmSubmission(existing.JobId, AlreadySubmitted: true);
        }
        await EnsureCanEverRunAsync(request.Resources, cancellationToken);
        Directory.CreateDirectory(Path.GetDirectoryName(request.OutputPath)!);
        var result = await RunAsync("sbatch", SbatchArguments(request, _options.Export), request.Script, cancellationToken);
        if (!result.Succeeded)
        {
            var error = SlurmOutput.ErrorText(result.StandardError);
            if (RefusalMarkers.Any(m => error.Contains(m, StringComparison.Ordinal)))
            {
                throw new SlurmRequestRefusedException($"Slurm refused job {request.Name}: {error}");
            }
            throw Failure("sbatch", result);
        }
        var jobId = SlurmOutput.ParseSubmittedJobId(result.StandardOutput);
        LogSubmitted(logger, request.Name, jobId, request.Resources.Gpus, request.Resources.CpusPerTask, request.Resources.MemoryMiB);
        return new SlurmSubmission(jobId, AlreadySubmitted: false);
    }

    internal static IReadOnlyList<string> SbatchArguments(SlurmJobRequest request, string export)
    {
        var resources = request.Resources;
        var arguments = new List<string>
        {
            "--parsable",
            $"--job-name={request.Name}",
            $"--output={request.OutputPath}",
            $"--error={request.OutputPath}",
            $"--chdir={request.WorkingDirectory}",
            "--nodes=1",
            "--ntasks=1",
            string.Create(CultureInfo.InvariantCulture, $"--cpus-per-task={resources.CpusPerTask}"),
            string.Create(CultureInfo.InvariantCulture, $"--mem={resources.MemoryMiB}M"),
            $"--time={SlurmOutput.FormatTimeLimit(resources.TimeLimit)}",
            $"--export={export}",
        };
        if (resources.Gpus > 0)
        {
            arguments.Add(string.Create(CultureInfo.InvariantCulture, $"--gres=gpu:{resources.Gpus}"));
        }
        if (resources.Partition is { Length: > 0 } partition)
        {
            arguments.Add($"--partition={partition}");
        }
        if (request.AfterOk.Count > 0)
        {
            arguments.Add("--dependency=afterok:" + string.Join(':', request.AfterOk.Select(id => id.ToString(CultureInfo.InvariantCulture))));
        }
        if (request.Comment is { Length: > 0 } comment)
        {
            arguments.Add($"--comment={comment}");
        }
        return arguments;
    }

    /// <summary>
    /// The newest job of this user with this name, in any state: squeue first (which forgets finished jobs after
    /// MinJobAge), then sacct when accounting is on. Null when neither knows it.
    /// </summary>
    public async Task<SlurmJob?> FindByNameAsync(string name, CancellationToken cancellationToken)
    {
        ValidateName(name);
        var result = await RunCheckedAsync("squeue",
            ["--noheader", "--states=all", "--me", $"--name={name}", $"--format={SlurmOutput.SqueueFormat}"], cancellationToken);
        var fromQueue = SlurmOutput.ParseSqueue(result.StandardOutput).Where(j => j.Name == name).MaxBy(j => j.JobId);
        if (fromQueue is not null)
        {
            return fromQueue;
        }
        var since = DateTime.Now - _options.AccountingLookback;
        var accounted = await SacctAsync(["--name=" + name, "--starttime=" + since.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture)],
            cancellationToken);
        return accounted?.Where(j => j.Name == name).MaxBy(j => j.JobId);
    }

    /// <summary>The job's state, exit code and times (scontrol; sacct once the controller has forgotten it). Null when nothing knows it.</summary>
    public async Task<SlurmJob?> GetJobAsync(long jobId, CancellationToken cancellationToken)
    {
        var id = jobId.ToString(CultureInfo.InvariantCulture);
        var result = await RunAsync("scontrol", ["show", "job", "-o", id], cancellationToken: cancellationToken);
        if (result.Succeeded)
        {
            return SlurmOutput.ParseScontrolJob(result.StandardOutput);
        }
        if (!SlurmOutput.IsUnknownJob(result.Output))
        {
            throw Failure("scontrol", result);
        }
        var accounted = await SacctAsync(["--jobs=" + id], cancellationToken);
        return accounted?.FirstOrDefault(j => j.JobId == jobId);
    }

    /// <summary>Cancels the job (scancel); a job that already ended or is unknown is left as it is.</summary>
    public async Task CancelAsync(long jobId, CancellationToken cancellationToken)
    {
        await RunCheckedAsync("scancel", [jobId.ToString(CultureInfo.InvariantCulture)], cancellationToken);
        LogCancelled(logger, jobId);
    }

    // Null when accounting is disabled (no slurmdbd): then only the controller's memory is there to ask.
    private async Task<IReadOnlyList<SlurmJob>?> SacctAsync(IEnumerable<string> selection, CancellationToken cancellationToken)
    {
        var result = await RunAsync("sacct",
            ["--parsable2", "--noheader", "--allocations", $"--format={SlurmOutput.SacctFormat}", .. selection], cancellationToken: cancellationToken);
        if (!result.Succeeded && SlurmOutput.IsAccountingDisabled(result.Output))
        {
            return null;
        }
        return result.Succeeded ? SlurmOutput.ParseSacct(result.StandardOutput) : throw Failure("sacct", result);
    }

    private async Task<ToolResult> RunCheckedAsync(string command, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        var result = await RunAsync(command, arguments, cancellationToken: cancellationToken);
        return result.Succeeded ? result : throw Failure(command, result);
    }

    private async Task<ToolResult> RunAsync(string command, IReadOnlyList<string> arguments, string? standardInput = null,
        CancellationToken cancellationToken = default)
    {
        var environment = string.IsNullOrWhiteSpace(_options.ConfigFile)
            ? null
            : new Dictionary<string, string> { ["SLURM_CONF"] = _options.ConfigFile };
        try
        {
            return await ToolRunner.RunAsync(_options.Command(command), arguments, _options.CommandTimeout, environment, standardInput, cancellationToken);
        }
        catch (ToolRunException e) when (e.TimedOut)
        {
            throw new UnavailableException(Dependency, $"Slurm did not answer: {e.Message} ({SlurmOptions.Section}:CommandTimeout)", e);
        }
        catch (ToolRunException e)
        {
            throw new UnavailableException(Dependency, $"Slurm's commands cannot be run here: {e.Message} (install Slurm's client commands, "
                + $"or set {SlurmOptions.Section}:BinDirectory)", e);
        }
    }

    private static Exception Failure(string command, ToolResult result)
    {
        var output = result.Output;
        return SlurmOutput.IsUnavailable(output)
            ? new UnavailableException(Dependency, $"Slurm is unavailable: {command} answered: {SlurmOutput.ErrorText(output)}")
            : new SlurmCommandException($"{command} exited with {result.ExitCode}: {output}");
    }

    private static void ValidateName(string name)
    {
        if (name.Length is 0 or > 200 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
        {
            throw new ArgumentException($"Slurm job name '{name}' must be 1-200 of A-Z a-z 0-9 . _ -", nameof(name));
        }
    }

    // sbatch's words for a request the cluster can never run (recorded: sbatch-gpu3, sbatch-bad-partition, sbatch-mem-too-much).
    private static readonly string[] RefusalMarkers =
    [
        "Requested node configuration is not available",
        "Invalid partition name specified",
        "Memory specification can not be satisfied",
        "Invalid generic resource (gres) specification",
        "Requested time limit is invalid",
        "Job violates accounting/QOS policy",
        "Invalid account or account/partition combination specified",
    ];

    [LoggerMessage(Level = LogLevel.Information, Message = "Submitted Slurm job {SlurmJobId} as {JobName} ({Gpus} GPUs, {Cpus} CPUs, {MemoryMiB} MiB)")]
    private static partial void LogSubmitted(ILogger logger, string jobName, long slurmJobId, int gpus, int cpus, long memoryMiB);

    [LoggerMessage(Level = LogLevel.Information, Message = "Slurm job {JobName} was already submitted as {SlurmJobId} ({State}); not submitting it again")]
    private static partial void LogFoundExisting(ILogger logger, string jobName, long slurmJobId, string state);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cancelled Slurm job {SlurmJobId}")]
    private static partial void LogCancelled(ILogger logger, long slurmJobId);
}
