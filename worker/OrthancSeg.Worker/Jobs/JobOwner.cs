using System.Globalization;

namespace OrthancSeg.Worker.Jobs;

/// <summary>
/// Lease owner names, "host/pid@start/loop": the host, the process id and the process's start time (clock ticks since
/// boot, from /proc), so a worker restarted on the same host can tell that the process holding a lease has ended,
/// even when its pid was reused since, and take the lease over at once instead of waiting for it to expire.
/// </summary>
internal static class JobOwner
{
    private static readonly string Process = $"{Environment.MachineName}/{Environment.ProcessId}@{StartTime(Environment.ProcessId) ?? 0}";

    /// <summary>The owner name of one claim loop of this process.</summary>
    public static string For(string loop) => $"{Process}/{loop}";

    /// <summary>The prefix every owner name of this host starts with.</summary>
    public static string HostPrefix => $"{Environment.MachineName}/";

    /// <summary>
    /// True only when <paramref name="owner"/> names a process of this host that is certainly gone: no process has its
    /// pid, or the one that has it started at another time. Anything else (another host, an unknown format, this
    /// process, no /proc) is treated as alive, so its lease runs out normally.
    /// </summary>
    public static bool HasEnded(string owner)
    {
        if (!owner.StartsWith(HostPrefix, StringComparison.Ordinal) || owner.StartsWith(Process + "/", StringComparison.Ordinal))
        {
            return false;
        }
        var process = owner[HostPrefix.Length..].Split('/')[0].Split('@');
        if (process.Length != 2
            || !int.TryParse(process[0], NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
            || !long.TryParse(process[1], NumberStyles.None, CultureInfo.InvariantCulture, out var started)
            || started == 0
            || !Directory.Exists("/proc/self"))
        {
            return false;
        }
        return StartTime(pid) is not { } now || now != started;
    }

    /// <summary>Field 22 of /proc/PID/stat (after the command name, which may hold spaces and parentheses); null if there is no such process.</summary>
    internal static long? StartTime(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return fields.Length > 19 && long.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks) ? ticks : null;
    }
}
