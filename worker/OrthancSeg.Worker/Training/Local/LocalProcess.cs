using System.Globalization;
using System.Runtime.InteropServices;

namespace OrthancSeg.Worker.Training.Local;

/// <summary>How a local job ended.</summary>
internal enum LocalOutcome
{
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,

    /// <summary>Its wrapper is gone without an exit file (the machine rebooted, or someone killed it with SIGKILL): the result is unknown.</summary>
    Lost,
}

/// <summary>The end of a local job: its exit code, or the signal that ended it, and when.</summary>
internal sealed record LocalExit(LocalOutcome Outcome, int? ExitCode, int? Signal, DateTimeOffset? EndedAt);

/// <summary>
/// A job the <see cref="LocalProcessLauncher"/> started, or re-attached to after a restart from its run directory.
/// The job runs in its own session and process group (its id is <see cref="ProcessGroupId"/>), under a small
/// wrapper in another session that waits for it and writes its exit code to the run directory's "exit" file, so the
/// result is kept even when the worker that started it is gone. The time limit is enforced by coreutils' timeout
/// inside the job's group, so it holds while no worker watches either.
/// </summary>
internal sealed partial class LocalProcess
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);

    internal LocalProcess(string runDirectory, int processGroupId, int wrapperPid, long? wrapperStartTicks, DateTimeOffset startedAt, TimeSpan? timeLimit)
    {
        RunDirectory = runDirectory;
        ProcessGroupId = processGroupId;
        WrapperPid = wrapperPid;
        WrapperStartTicks = wrapperStartTicks;
        StartedAt = startedAt;
        TimeLimit = timeLimit;
    }

    public string RunDirectory { get; }

    /// <summary>The job's pid, which is also its process group and session id: what the records keep as the backend id.</summary>
    public int ProcessGroupId { get; }

    public int WrapperPid { get; }

    /// <summary>The wrapper's start time in clock ticks since boot (/proc/PID/stat), so that a reused pid is not taken for it.</summary>
    public long? WrapperStartTicks { get; }

    public DateTimeOffset StartedAt { get; }

    public TimeSpan? TimeLimit { get; }

    public string ExitFile => Path.Combine(RunDirectory, LocalProcessLauncher.ExitFileName);

    /// <summary>The exit, once the wrapper has written it; null while the job runs.</summary>
    public LocalExit? TryReadExit()
    {
        string text;
        try
        {
            text = File.ReadAllText(ExitFile).Trim();
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        var f = text.Split(' ');
        if (f.Length != 3 || !int.TryParse(f[0], NumberStyles.None, CultureInfo.InvariantCulture, out var code)
            || !long.TryParse(f[2], NumberStyles.None, CultureInfo.InvariantCulture, out var ended))
        {
            throw new FormatException($"{ExitFile} holds '{text}', not 'CODE START END'");
        }
        var endedAt = DateTimeOffset.FromUnixTimeSeconds(ended);
        var signal = code > 128 ? code - 128 : (int?)null;
        var outcome = code == 0 ? LocalOutcome.Succeeded
            : File.Exists(Path.Combine(RunDirectory, LocalProcessLauncher.CancelledFileName)) ? LocalOutcome.Cancelled
            // timeout exits 124 after its TERM ended the job, 137 when it had to SIGKILL it; a job may exit 124 by itself, hence the clock.
            : code is 124 or 137 && TimeLimit is { } limit && endedAt - StartedAt >= limit - TimeSpan.FromSeconds(1) ? LocalOutcome.TimedOut
            : LocalOutcome.Failed;
        return new LocalExit(outcome, signal is null ? code : null, signal, endedAt);
    }

    /// <summary>True while the wrapper (and so the job) is alive.</summary>
    public bool IsRunning => TryReadExit() is null && IsWrapperAlive();

    /// <summary>Waits for the job to end; <see cref="LocalOutcome.Lost"/> when its wrapper vanished without an exit file.</summary>
    public async Task<LocalExit> WaitForExitAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (TryReadExit() is { } exit)
            {
                return exit;
            }
            if (!IsWrapperAlive())
            {
                // The wrapper writes the file just before it exits: look once more before calling it lost.
                return TryReadExit() ?? new LocalExit(LocalOutcome.Lost, null, null, null);
            }
            await Task.Delay(PollInterval, cancellationToken);
        }
    }

    /// <summary>
    /// Stops the job and every process in its group: SIGTERM, then SIGKILL after the grace period. Marked cancelled
    /// first, so that a worker re-attaching later reads the end as a cancel, not a failure.
    /// </summary>
    public async Task<LocalExit> CancelAsync(TimeSpan gracePeriod, CancellationToken cancellationToken)
    {
        if (TryReadExit() is { } ended)
        {
            return ended;
        }
        await File.WriteAllTextAsync(Path.Combine(RunDirectory, LocalProcessLauncher.CancelledFileName), DateTimeOffset.UtcNow.ToString("O"), cancellationToken);
        SignalGroup(SigTerm);
        using (var grace = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            grace.CancelAfter(gracePeriod);
            try
            {
                return await WaitForExitAsync(grace.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // It ignored or outlived SIGTERM.
            }
        }
        SignalGroup(SigKill);
        return await WaitForExitAsync(cancellationToken);
    }

    private bool IsWrapperAlive()
    {
        // A zombie has ended; a process with another start time is a stranger that got the pid after the wrapper ended.
        var stat = ProcStat(WrapperPid);
        return stat is not null && stat.Value.State != 'Z' && (WrapperStartTicks is null || stat.Value.StartTicks == WrapperStartTicks);
    }

    private void SignalGroup(int signal)
    {
        // Never 0 or 1: kill(0) and kill(-1) would signal the worker's own group or every process it may signal.
        if (ProcessGroupId <= 1)
        {
            throw new InvalidOperationException($"refusing to signal process group {ProcessGroupId}");
        }
        if (Kill(-ProcessGroupId, signal) != 0 && Marshal.GetLastPInvokeError() != Esrch)
        {
            throw new InvalidOperationException($"kill(-{ProcessGroupId}, {signal}) failed with errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>State letter and start time (field 22, clock ticks since boot) of a process, or null when there is none.</summary>
    internal static (char State, long StartTicks)? ProcStat(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or IOException)
        {
            return null;
        }
        // "pid (comm) S ppid …": comm may hold spaces and parentheses, so fields are counted after the last ')'.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (fields[0][0], long.Parse(fields[19], CultureInfo.InvariantCulture));
    }

    private const int SigTerm = 15;
    private const int SigKill = 9;
    private const int Esrch = 3;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
