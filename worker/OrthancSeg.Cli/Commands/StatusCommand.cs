using System.CommandLine;
using System.Globalization;
using Google.Protobuf.WellKnownTypes;
using OrthancSeg.Cli.Connection;
using OrthancSeg.Cli.Output;
using OrthancSeg.Contracts.V1;

namespace OrthancSeg.Cli.Commands;

/// <summary>
/// `orthancseg status`: what the system is doing, in sections: dependencies, versions, change feed, queues per kind, GPUs, backends.
/// Exits 0 when every dependency (and the local backend) is healthy, 1 when one is not, 2 when the worker cannot be asked.
/// </summary>
internal static class StatusCommand
{
    // Long enough for the worker's own bounded checks (Slurm's commands give up after about 12 s).
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    public static Command Create()
    {
        var command = new Command("status",
            "Show what the system is doing: dependencies, versions, change feed lag, queues per job kind, GPUs and backends "
            + "(exit 0 healthy, 1 a dependency or the local backend unhealthy, 8 unreachable)");
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var status = await worker.Status.GetSystemStatusAsync(new GetSystemStatusRequest(),
                deadline: DateTime.UtcNow + Deadline, cancellationToken: ct);
            var healthy = status.Dependencies.All(d => d.Healthy) && status.LocalBackend?.Healthy != false;
            var now = DateTimeOffset.UtcNow;
            if (output.Json)
            {
                output.WriteJson(ToJson(worker.Address.ToString(), status, healthy, now));
            }
            else
            {
                Print(output, worker.Address.ToString(), status, now);
            }
            return healthy ? ExitCodes.Ok : ExitCodes.Unhealthy;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg status",
            "orthancseg status --json");
    }

    private static void Print(ConsoleOutput output, string address, GetSystemStatusResponse status, DateTimeOffset now)
    {
        output.Line($"Worker {address} version {status.WorkerVersion}, started {Formatting.Time(status.StartedAt)}");

        Section(output, "Dependencies");
        output.Table(["DEPENDENCY", "STATE", "DETAIL"],
            status.Dependencies.Select(d => (IReadOnlyList<string>)[d.Name, d.Healthy ? "healthy" : "UNHEALTHY", d.Detail]));

        Section(output, "Versions");
        output.Table(["COMPONENT", "VERSION"], new List<IReadOnlyList<string>>
        {
            new[] { "worker", status.WorkerVersion },
            new[] { "orthanc", Known(status.OrthancVersion) },
            new[] { "postgresql", Known(status.PostgresqlVersion) },
            new[] { "schema", status.Schema is { } s ? $"{s.Version:D4}_{s.Name} (applied {Formatting.Time(s.AppliedAt)})" : "unknown" },
        });

        Section(output, "Change feed");
        var feed = status.ChangeFeed ?? new ChangeFeedStatus();
        output.Table(["FIELD", "VALUE"], new List<IReadOnlyList<string>>
        {
            new[] { "cursor", feed.CursorRead ? $"{Formatting.Number(feed.Cursor)} (advanced {Formatting.Time(feed.CursorAdvancedAt)}, {Age(feed.CursorAdvancedAt, now)} ago)" : "unknown" },
            new[] { "orthanc last", feed.OrthancAnswered ? Formatting.Number(feed.OrthancLastSeq) : "unknown" },
            new[] { "lag", feed.CursorRead && feed.OrthancAnswered ? $"{Formatting.Number(feed.Lag)} change(s)" : "unknown" },
        }.Concat(feed.Detail.Length > 0 ? [new[] { "problem", feed.Detail }] : []));

        Section(output, "Queues");
        if (!status.QueuesRead)
        {
            output.Line("unknown: PostgreSQL did not answer");
        }
        else
        {
            output.Table(["KIND", "QUEUED", "RETRYING", "RUNNING", "DEAD", "OLDEST WAITING"], status.Queues.Select(q => (IReadOnlyList<string>)[
                q.HandledHere ? q.Kind : $"{q.Kind} (not run here)", Formatting.Number(q.Queued), Formatting.Number(q.Retrying), Formatting.Number(q.Running),
                Formatting.Number(q.Dead), q.OldestWaitingSince is null ? "" : Age(q.OldestWaitingSince, now)]));
        }

        var local = status.LocalBackend ?? new LocalBackendStatus();
        Section(output, "GPUs");
        if (local.Gpus.Count == 0)
        {
            output.Line(local.Healthy ? "none: the local backend runs CPU requests only" : "unknown: " + local.Detail);
        }
        else
        {
            output.Table(["GPU", "HELD BY"], local.Gpus.Select(g => (IReadOnlyList<string>)[g.Id, g.HeldBy.Length > 0 ? g.HeldBy : "free"]));
        }

        Section(output, "Backends");
        var slurm = status.SlurmBackend ?? new SlurmBackendStatus();
        var localDetail = local.Healthy
            ? $"{local.Detail}; CPUs {local.CpusAdmitted}/{local.CpusCapacity} admitted, memory {local.MemoryMibAdmitted}/{local.MemoryMibCapacity} MiB admitted; "
              + $"{local.Runs.Count} run(s), {local.Waiting} waiting"
            : local.Detail;
        var partitions = slurm.Partitions.Count == 0 ? "" : "; partitions: " + string.Join(", ",
            slurm.Partitions.Select(p => $"{p.Name}{(p.IsDefault ? "*" : "")} [{string.Join(", ", p.Nodes)}]"));
        output.Table(["BACKEND", "STATE", "DETAIL"], new List<IReadOnlyList<string>>
        {
            new[] { Backend("local", status.DefaultBackend), local.Healthy ? "healthy" : "UNHEALTHY", localDetail },
            new[] { Backend("slurm", status.DefaultBackend), !slurm.Configured ? "not configured" : slurm.Healthy ? "healthy" : "UNHEALTHY", slurm.Detail + partitions },
        });
        if (local.Runs.Count > 0)
        {
            output.Line();
            output.Table(["LOCAL RUN", "GPUS", "CPUS", "MEMORY MIB"], local.Runs.Select(r => (IReadOnlyList<string>)[
                r.Key, r.Gpus.Count == 0 ? "-" : string.Join(",", r.Gpus), Formatting.Number(r.Cpus), Formatting.Number(r.MemoryMib)]));
        }
    }

    private static object ToJson(string address, GetSystemStatusResponse status, bool healthy, DateTimeOffset now)
    {
        var feed = status.ChangeFeed ?? new ChangeFeedStatus();
        var local = status.LocalBackend ?? new LocalBackendStatus();
        var slurm = status.SlurmBackend ?? new SlurmBackendStatus();
        return new
        {
            worker = address,
            workerVersion = status.WorkerVersion,
            startedAt = status.StartedAt.ToDateTimeOffset(),
            healthy,
            dependencies = status.Dependencies.Select(d => new { d.Name, d.Healthy, d.Detail }),
            versions = new
            {
                worker = status.WorkerVersion,
                orthanc = NullIfEmpty(status.OrthancVersion),
                postgresql = NullIfEmpty(status.PostgresqlVersion),
                schema = status.Schema is { } s ? new { version = s.Version, name = s.Name, appliedAt = Formatting.TimeValue(s.AppliedAt) } : null,
            },
            changeFeed = new
            {
                cursor = feed.CursorRead ? feed.Cursor : (long?)null,
                cursorAdvancedAt = Formatting.TimeValue(feed.CursorAdvancedAt),
                orthancLastSeq = feed.OrthancAnswered ? feed.OrthancLastSeq : (long?)null,
                lag = feed.CursorRead && feed.OrthancAnswered ? feed.Lag : (long?)null,
                problem = NullIfEmpty(feed.Detail),
            },
            queues = status.QueuesRead
                ? status.Queues.Select(q => new
                {
                    kind = q.Kind, queued = q.Queued, retrying = q.Retrying, running = q.Running, dead = q.Dead, handledHere = q.HandledHere,
                    oldestWaitingSince = Formatting.TimeValue(q.OldestWaitingSince),
                    oldestWaitingSeconds = q.OldestWaitingSince is null ? (double?)null : Math.Round((now - q.OldestWaitingSince.ToDateTimeOffset()).TotalSeconds, 1),
                })
                : null,
            defaultBackend = status.DefaultBackend,
            local = new
            {
                local.Healthy,
                local.Detail,
                gpus = local.Gpus.Select(g => new { id = g.Id, heldBy = NullIfEmpty(g.HeldBy) }),
                cpus = new { admitted = local.CpusAdmitted, capacity = local.CpusCapacity },
                memoryMib = new { admitted = local.MemoryMibAdmitted, capacity = local.MemoryMibCapacity },
                runs = local.Runs.Select(r => new { key = r.Key, gpus = r.Gpus, cpus = r.Cpus, memoryMib = r.MemoryMib }),
                waiting = local.Waiting,
            },
            slurm = new
            {
                slurm.Configured,
                slurm.Healthy,
                slurm.Detail,
                partitions = slurm.Partitions.Select(p => new { name = p.Name, isDefault = p.IsDefault, nodes = p.Nodes }),
                jobsPending = slurm.JobsPending,
                jobsRunning = slurm.JobsRunning,
            },
        };
    }

    private static void Section(ConsoleOutput output, string title)
    {
        output.Line();
        output.Line(title.ToUpperInvariant());
    }

    private static string Backend(string name, string defaultBackend) => name == defaultBackend ? $"{name} (default)" : name;

    private static string Known(string value) => value.Length > 0 ? value : "unknown";

    private static string? NullIfEmpty(string value) => value.Length > 0 ? value : null;

    /// <summary>How long ago, as people read it: 42s, 3m12s, 5h07m, 2d04h.</summary>
    private static string Age(Timestamp? since, DateTimeOffset now)
    {
        if (since is null)
        {
            return "";
        }
        var age = now - since.ToDateTimeOffset();
        if (age < TimeSpan.Zero)
        {
            age = TimeSpan.Zero;
        }
        return age.TotalSeconds < 60 ? string.Create(CultureInfo.InvariantCulture, $"{(int)age.TotalSeconds}s")
            : age.TotalMinutes < 60 ? string.Create(CultureInfo.InvariantCulture, $"{(int)age.TotalMinutes}m{age.Seconds:D2}s")
            : age.TotalHours < 24 ? string.Create(CultureInfo.InvariantCulture, $"{(int)age.TotalHours}h{age.Minutes:D2}m")
            : string.Create(CultureInfo.InvariantCulture, $"{(int)age.TotalDays}d{age.Hours:D2}h");
    }
}
