using System.Globalization;
using System.Text.RegularExpressions;

namespace OrthancSeg.Worker.Training.Slurm;

/// <summary>
/// Every Slurm output the worker reads is parsed here, from the machine-readable forms <see cref="SlurmClient"/>
/// asks for, and tested against recorded real output (tests/…/Training/Slurm/Recorded). A line that does not have
/// the expected shape is a <see cref="FormatException"/>, never a silently empty answer.
/// </summary>
internal static partial class SlurmOutput
{
    /// <summary>squeue's fields, '|'-separated; the job name last, so that nothing after it can be shifted by it.</summary>
    public const string SqueueFormat = "%i|%T|%r|%P|%D|%C|%m|%b|%l|%M|%V|%S|%e|%N|%k|%j";

    /// <summary>sinfo, one line per node and partition: name, partition (default marked '*'), CPUs, memory MiB, gres, state, max time.</summary>
    public const string SinfoFormat = "%N|%P|%c|%m|%G|%T|%l";

    /// <summary>sacct's fields for --parsable2 (separator '|', no trailing one).</summary>
    public const string SacctFormat = "JobID,JobName,State,ExitCode,Reason,Partition,NodeList,Submit,Start,End";

    /// <summary>sbatch --parsable prints "ID" or, on a multi-cluster setup, "ID;CLUSTER".</summary>
    public static long ParseSubmittedJobId(string stdout)
    {
        var line = stdout.Trim();
        var id = line.Split(';', 2)[0];
        return long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var jobId) && jobId > 0
            ? jobId
            : throw new FormatException($"sbatch --parsable printed '{line}', not a job id");
    }

    public static IReadOnlyList<SlurmJob> ParseSqueue(string stdout)
    {
        var jobs = new List<SlurmJob>();
        foreach (var line in Lines(stdout))
        {
            // The name is last and may itself hold '|', so split into at most the known number of fields.
            var f = line.Split('|', 16);
            if (f.Length != 16)
            {
                throw new FormatException($"squeue line has {f.Length} fields, not 16: '{line}'");
            }
            jobs.Add(new SlurmJob
            {
                JobId = JobId(f[0], line),
                State = f[1],
                Reason = f[2],
                Partition = f[3],
                SubmitTime = Time(f[10]),
                StartTime = Time(f[11]),
                EndTime = Time(f[12]),
                NodeList = Empty(f[13]),
                Comment = Empty(f[14]),
                Name = f[15],
            });
        }
        return jobs;
    }

    /// <summary>`scontrol show job -o ID`: one line of Key=Value pairs separated by spaces.</summary>
    public static SlurmJob ParseScontrolJob(string stdout)
    {
        var line = Lines(stdout).FirstOrDefault() ?? throw new FormatException("scontrol show job printed nothing");
        var fields = KeyValues(line);
        string Field(string key) => fields.TryGetValue(key, out var value) ? value
            : throw new FormatException($"scontrol show job has no {key}=: '{line}'");
        var (exitCode, signal) = ExitCode(Field("ExitCode"));
        return new SlurmJob
        {
            JobId = JobId(Field("JobId"), line),
            Name = Field("JobName"),
            State = Field("JobState"),
            Reason = Field("Reason"),
            Partition = Field("Partition"),
            NodeList = Empty(Field("NodeList")),
            ExitCode = exitCode,
            Signal = signal,
            Comment = fields.TryGetValue("Comment", out var comment) ? Empty(comment) : null,
            OutputPath = fields.TryGetValue("StdOut", out var stdoutPath) ? Empty(stdoutPath) : null,
            SubmitTime = Time(Field("SubmitTime")),
            StartTime = Time(Field("StartTime")),
            EndTime = Time(Field("EndTime")),
        };
    }

    /// <summary>
    /// `sacct --parsable2 --noheader --format=<see cref="SacctFormat"/>`: one line per job and per step
    /// (ID.batch, ID.extern); only the job lines are returned, since they carry the job's state and exit code.
    /// </summary>
    public static IReadOnlyList<SlurmJob> ParseSacct(string stdout)
    {
        var jobs = new List<SlurmJob>();
        foreach (var line in Lines(stdout))
        {
            var f = line.Split('|');
            if (f.Length != 10)
            {
                throw new FormatException($"sacct line has {f.Length} fields, not 10: '{line}'");
            }
            if (f[0].Contains('.', StringComparison.Ordinal))
            {
                continue;
            }
            var (exitCode, signal) = ExitCode(f[3]);
            jobs.Add(new SlurmJob
            {
                JobId = JobId(f[0], line),
                Name = f[1],
                State = f[2],
                ExitCode = exitCode,
                Signal = signal,
                Reason = Empty(f[4]),
                Partition = Empty(f[5]),
                NodeList = f[6] is "None assigned" ? null : Empty(f[6]),
                SubmitTime = Time(f[7]),
                StartTime = Time(f[8]),
                EndTime = Time(f[9]),
            });
        }
        return jobs;
    }

    /// <summary>`sinfo --noheader --Node --format=<see cref="SinfoFormat"/>`: partitions with the nodes in them.</summary>
    public static IReadOnlyList<SlurmPartition> ParseSinfoNodes(string stdout)
    {
        var partitions = new List<(string Name, bool IsDefault, TimeSpan? MaxTime, List<SlurmNode> Nodes)>();
        foreach (var line in Lines(stdout))
        {
            var f = line.Split('|');
            if (f.Length != 7)
            {
                throw new FormatException($"sinfo line has {f.Length} fields, not 7: '{line}'");
            }
            var isDefault = f[1].EndsWith('*');
            var name = f[1].TrimEnd('*');
            var node = new SlurmNode(f[0], Int(f[2], line), Memory(f[3], line), GpuCount(f[4]), f[5]);
            var index = partitions.FindIndex(p => p.Name == name);
            if (index < 0)
            {
                partitions.Add((name, isDefault, Duration(f[6]), [node]));
            }
            else
            {
                partitions[index].Nodes.Add(node);
            }
        }
        return [.. partitions.Select(p => new SlurmPartition(p.Name, p.IsDefault, p.MaxTime, p.Nodes))];
    }

    /// <summary>
    /// GPUs in a gres string as sinfo %G prints it: "gpu:2", "gpu:a100:4(S:0-1)", "gpu:tesla:2,mps:200",
    /// "(null)". Every gpu entry counts, whatever its type.
    /// </summary>
    public static int GpuCount(string gres)
    {
        var total = 0;
        foreach (var entry in GresEntries().Matches(gres).Select(m => m.Value))
        {
            var parts = entry.Split('(', 2)[0].Split(':');
            if (parts[0] != "gpu")
            {
                continue;
            }
            // "gpu" alone means one; otherwise the count is the last part ("gpu:2", "gpu:a100:4").
            if (parts.Length == 1)
            {
                total += 1;
            }
            else if (int.TryParse(parts[^1], NumberStyles.None, CultureInfo.InvariantCulture, out var count))
            {
                total += count;
            }
            else
            {
                throw new FormatException($"gres entry '{entry}' has no GPU count");
            }
        }
        return total;
    }

    /// <summary>
    /// A Slurm duration: "infinite"/"UNLIMITED" (null), "MM", "MM:SS", "HH:MM:SS", "D-HH", "D-HH:MM", "D-HH:MM:SS".
    /// </summary>
    public static TimeSpan? Duration(string text)
    {
        if (text is "infinite" or "UNLIMITED" or "INFINITE")
        {
            return null;
        }
        var days = 0;
        var rest = text;
        var dash = text.IndexOf('-', StringComparison.Ordinal);
        if (dash >= 0)
        {
            days = Int(text[..dash], text);
            rest = text[(dash + 1)..];
        }
        var parts = rest.Split(':').Select(p => Int(p, text)).ToArray();
        return (dash >= 0, parts.Length) switch
        {
            (false, 1) => new TimeSpan(0, parts[0], 0),
            (false, 2) => new TimeSpan(0, parts[0], parts[1]),
            (false, 3) => new TimeSpan(parts[0], parts[1], parts[2]),
            (true, 1) => new TimeSpan(days, parts[0], 0, 0),
            (true, 2) => new TimeSpan(days, parts[0], parts[1], 0),
            (true, 3) => new TimeSpan(days, parts[0], parts[1], parts[2]),
            _ => throw new FormatException($"'{text}' is not a Slurm duration"),
        };
    }

    /// <summary>
    /// sbatch --time, rounded up to whole minutes (Slurm's granularity: --time=0:05 became a 1-minute limit), as D-HH:MM:00.
    /// </summary>
    public static string FormatTimeLimit(TimeSpan limit)
    {
        var minutes = (long)Math.Ceiling(limit.TotalMinutes);
        if (minutes < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(limit), limit, "a time limit must be positive");
        }
        return string.Create(CultureInfo.InvariantCulture, $"{minutes / 1440}-{minutes / 60 % 24:00}:{minutes % 60:00}:00");
    }

    /// <summary>True when a Slurm command's error says the controller or its authentication cannot be reached.</summary>
    public static bool IsUnavailable(string output) => UnavailableMarkers.Any(m => output.Contains(m, StringComparison.OrdinalIgnoreCase));

    /// <summary>True when scontrol/squeue say the job id is not (or no longer) known to the controller.</summary>
    public static bool IsUnknownJob(string output) => output.Contains("Invalid job id specified", StringComparison.Ordinal);

    /// <summary>True when sacct says there is no accounting database to ask.</summary>
    public static bool IsAccountingDisabled(string output) => output.Contains("accounting storage is disabled", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The error lines of a refused sbatch, without the "sbatch: error: " prefixes:
    /// "invalid partition specified: nope; Batch job submission failed: Invalid partition name specified".
    /// </summary>
    public static string ErrorText(string stderr) => string.Join("; ", Lines(stderr).Select(l => ErrorPrefix().Replace(l, "")));

    // What the commands print when slurmctld is down or unreachable, munged is down, or no configuration is found
    // (recorded: *-controller-down, *-munge-down; the others are the same library's messages for timeouts).
    private static readonly string[] UnavailableMarkers =
    [
        "Unable to contact slurm controller",
        "Protocol authentication error",
        "Munge encode failed",
        "Could not establish a configuration source",
        "Socket timed out on send/recv operation",
        "Zero Bytes were transmitted or received",
        "Slurm backup controller in standby mode",
        "Communication connection failure",
    ];

    private static Dictionary<string, string> KeyValues(string line)
    {
        // Values may hold spaces (Command=, WorkDir=, Comment=), so a value runs up to the next " Key=" token.
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        var matches = KeyToken().Matches(line);
        for (var i = 0; i < matches.Count; i++)
        {
            var start = matches[i].Index + matches[i].Length;
            var end = i + 1 < matches.Count ? matches[i + 1].Index : line.Length;
            fields.TryAdd(matches[i].Groups["key"].Value, line[start..end].Trim());
        }
        return fields;
    }

    private static (int? ExitCode, int? Signal) ExitCode(string text)
    {
        var parts = text.Split(':');
        return parts.Length == 2
            && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var code)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var signal)
            ? (code, signal)
            : throw new FormatException($"'{text}' is not a Slurm exit code (CODE:SIGNAL)");
    }

    private static DateTime? Time(string text) =>
        text is "N/A" or "Unknown" or "None" or "" ? null
        : DateTime.TryParseExact(text, "yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture, DateTimeStyles.None, out var time) ? time
        : throw new FormatException($"'{text}' is not a Slurm time");

    private static long JobId(string text, string line) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var id)
            ? id
            : throw new FormatException($"'{text}' is not a job id (array and het jobs are not submitted by the worker): '{line}'");

    private static int Int(string text, string context) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new FormatException($"'{text}' is not a number in '{context}'");

    // sinfo %m may print "1000" or "1000+" (nodes of a line differ); the smaller value is what every node has.
    private static long Memory(string text, string line) =>
        long.TryParse(text.TrimEnd('+'), NumberStyles.None, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new FormatException($"'{text}' is not a memory size in '{line}'");

    private static string? Empty(string text) => text is "" or "(null)" or "N/A" ? null : text;

    private static IEnumerable<string> Lines(string text) =>
        text.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Trim().Length > 0);

    [GeneratedRegex(@"(?:^|(?<= ))(?<key>[A-Za-z][A-Za-z0-9_/:]*)=")]
    private static partial Regex KeyToken();

    // One gres entry: a name with its ':' parts and an optional "(…)" suffix, entries separated by ','.
    [GeneratedRegex(@"[A-Za-z][^,(]*(?:\([^)]*\))?")]
    private static partial Regex GresEntries();

    [GeneratedRegex(@"^\w+: error: ")]
    private static partial Regex ErrorPrefix();
}
