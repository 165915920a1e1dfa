using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Options;

namespace OrthancSeg.Worker.Training.Local;

/// <summary>One command to run locally, with the GPUs the ledger gave it.</summary>
internal sealed record LocalLaunchRequest
{
    public required string Command { get; init; }
    public IReadOnlyList<string> Arguments { get; init; } = [];

    /// <summary>Added to the worker's environment (nnUNet_raw, nnUNet_n_proc_DA, …).</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    public required string WorkingDirectory { get; init; }

    /// <summary>A folder of this job alone: pid, exit and cancel files live here; a restarted worker re-attaches from it.</summary>
    public required string RunDirectory { get; init; }

    /// <summary>stdout and stderr of the job, appended.</summary>
    public required string LogPath { get; init; }

    public required LocalAllocation Allocation { get; init; }

    public TimeSpan? TimeLimit { get; init; }
}

/// <summary>
/// Starts local jobs so that they survive the worker and can be found again: the command runs in its own session
/// and process group (so cancel reaches every process it started), under coreutils' timeout for the time limit,
/// with CUDA_VISIBLE_DEVICES set to its own GPUs; a wrapper in a separate session waits for it and writes the exit
/// code to a file. Nothing of the job is tied to the worker's process: no pipes, no parent that must stay alive.
/// </summary>
internal sealed partial class LocalProcessLauncher(IOptions<LocalOptions> options, ILogger<LocalProcessLauncher> logger)
{
    public const string PidFileName = "pid";
    public const string ExitFileName = "exit";
    public const string CancelledFileName = "cancelled";
    public const string LaunchedFileName = "launched";
    private const string WrapperFileName = "wrapper";

    // $1 run dir, $2 time limit (s, 0 = none), $3 kill grace (s), $4 log; then the command. The job is started with
    // setsid (its own session and group, pid = group id) under timeout, which on expiry TERMs the whole group and
    // KILLs it after the grace. The pid file and the exit file are written aside and renamed, so a reader never
    // sees half of one. "$(date +%s)" stamps start and end for the time-limit verdict.
    private const string WrapperScript = """
        dir=$1; limit=$2; grace=$3; log=$4; shift 4
        exec </dev/null >>"$log" 2>&1
        start=$(date +%s)
        setsid timeout --kill-after="$grace" "$limit" "$@" &
        job=$!
        echo "$job $$ $start" >"$dir/pid.tmp" && mv "$dir/pid.tmp" "$dir/pid"
        wait "$job"
        code=$?
        echo "$code $start $(date +%s)" >"$dir/exit.tmp" && mv "$dir/exit.tmp" "$dir/exit"
        """;

    /// <summary>Starts the job and returns once it runs (its pid file exists).</summary>
    public async Task<LocalProcess> StartAsync(LocalLaunchRequest request, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(request.RunDirectory);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(request.LogPath))!);
        // Marked before the start: a worker that dies between the start and the pid file leaves the mark, so its
        // successor never starts the same job a second time in this directory (it finds the pid file, or a mark
        // without one: then the job is lost and runs again in a new run directory).
        var launched = Path.Combine(request.RunDirectory, LaunchedFileName);
        try
        {
            await using (new FileStream(launched, FileMode.CreateNew, FileAccess.Write))
            {
            }
        }
        catch (IOException) when (File.Exists(launched))
        {
            throw new InvalidOperationException($"{request.RunDirectory} already holds a started job; attach to it instead of starting it again");
        }
        var info = new ProcessStartInfo("setsid") { UseShellExecute = false, WorkingDirectory = request.WorkingDirectory };
        foreach (var argument in (string[])["sh", "-c", WrapperScript, "orthancseg-job", request.RunDirectory,
                     Seconds(request.TimeLimit ?? TimeSpan.Zero), Seconds(options.Value.KillGracePeriod), Path.GetFullPath(request.LogPath),
                     request.Command, .. request.Arguments])
        {
            info.ArgumentList.Add(argument);
        }
        foreach (var (key, value) in request.Environment)
        {
            info.Environment[key] = value;
        }
        // nvidia-smi numbers GPUs by PCI bus; CUDA by speed unless told otherwise. Same order, same indices.
        info.Environment["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID";
        info.Environment["CUDA_VISIBLE_DEVICES"] = request.Allocation.CudaVisibleDevices;

        using var wrapper = Process.Start(info) ?? throw new InvalidOperationException("setsid could not be started");
        var pidFile = Path.Combine(request.RunDirectory, PidFileName);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!File.Exists(pidFile))
        {
            if (DateTime.UtcNow > deadline || (wrapper.HasExited && !File.Exists(pidFile)))
            {
                throw new InvalidOperationException($"{request.Command} did not start (no pid file in {request.RunDirectory}); "
                    + $"its log {request.LogPath} may say why");
            }
            await Task.Delay(20, cancellationToken);
        }
        var process = Attach(request.RunDirectory, request.TimeLimit, recordWrapper: true)
            ?? throw new InvalidOperationException($"{pidFile} vanished");
        LogStarted(logger, request.Allocation.JobKey, process.ProcessGroupId, request.Allocation.CudaVisibleDevices, request.Command);
        return process;
    }

    /// <summary>
    /// True when a job was ever started in this run directory, even if its pid file never appeared (the worker died
    /// in between). With <see cref="Attach"/> returning null, such a job is lost: run it again in a new directory.
    /// </summary>
    public static bool WasLaunched(string runDirectory) => File.Exists(Path.Combine(runDirectory, LaunchedFileName));

    /// <summary>
    /// True when this run directory holds a job to follow: one still running, or one that ended and wrote its exit file. False for a job
    /// lost with its worker (killed with the worker's process tree before it could write its exit): a new attempt runs it again
    /// elsewhere instead of re-attaching to a process that will never report.
    /// </summary>
    public static bool HoldsFollowableJob(string runDirectory) =>
        Attach(runDirectory, null) is { } process && (process.TryReadExit() is not null || process.IsRunning);

    /// <summary>
    /// The job started in this run directory by this or an earlier worker, running or ended; null when none was
    /// started there. The time limit is the one it was started with (the records hold it).
    /// </summary>
    public static LocalProcess? Attach(string runDirectory, TimeSpan? timeLimit) => Attach(runDirectory, timeLimit, recordWrapper: false);

    private static LocalProcess? Attach(string runDirectory, TimeSpan? timeLimit, bool recordWrapper)
    {
        string text;
        try
        {
            text = File.ReadAllText(Path.Combine(runDirectory, PidFileName)).Trim();
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        var f = text.Split(' ');
        if (f.Length != 3 || !int.TryParse(f[0], NumberStyles.None, CultureInfo.InvariantCulture, out var job)
            || !int.TryParse(f[1], NumberStyles.None, CultureInfo.InvariantCulture, out var wrapperPid)
            || !long.TryParse(f[2], NumberStyles.None, CultureInfo.InvariantCulture, out var started))
        {
            throw new FormatException($"{runDirectory}/{PidFileName} holds '{text}', not 'JOB WRAPPER START'");
        }
        var wrapperFile = Path.Combine(runDirectory, WrapperFileName);
        long? wrapperTicks = null;
        if (recordWrapper)
        {
            // Read while the wrapper is certainly ours (it has just written the pid file); a later attach compares.
            wrapperTicks = LocalProcess.ProcStat(wrapperPid)?.StartTicks;
            if (wrapperTicks is { } ticks)
            {
                File.WriteAllText(wrapperFile, ticks.ToString(CultureInfo.InvariantCulture));
            }
        }
        else if (File.Exists(wrapperFile))
        {
            wrapperTicks = long.Parse(File.ReadAllText(wrapperFile).Trim(), CultureInfo.InvariantCulture);
        }
        return new LocalProcess(runDirectory, job, wrapperPid, wrapperTicks, DateTimeOffset.FromUnixTimeSeconds(started), timeLimit);
    }

    private static string Seconds(TimeSpan duration) => Math.Ceiling(duration.TotalSeconds).ToString(CultureInfo.InvariantCulture);

    [LoggerMessage(Level = LogLevel.Information, Message = "Started local job {JobKey} as process group {ProcessGroupId} on GPUs [{Gpus}]: {Command}")]
    private static partial void LogStarted(ILogger logger, string jobKey, int processGroupId, string gpus, string command);
}
