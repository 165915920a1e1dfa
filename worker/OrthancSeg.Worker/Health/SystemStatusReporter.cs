using System.Diagnostics;
using System.Reflection;
using Npgsql;
using OrthancSeg.Worker.Jobs;
using OrthancSeg.Worker.Orthanc;
using OrthancSeg.Worker.Persistence;

namespace OrthancSeg.Worker.Health;

/// <summary>The answer of one dependency check: what was checked and what it said (a version, or the error).</summary>
internal sealed record DependencyCheck(string Name, bool Healthy, string Detail);

/// <summary>The last migration applied to the worker's database.</summary>
internal sealed record SchemaReport(int Version, string Name, DateTimeOffset AppliedAt);

/// <summary>
/// The stored change cursor against Orthanc's last change; either side is null when it could not be read, and
/// <see cref="Detail"/> then says why.
/// </summary>
internal sealed record ChangeFeedReport(long? Cursor, DateTimeOffset? CursorAdvancedAt, long? OrthancLastSeq, string Detail)
{
    /// <summary>Changes Orthanc has that the worker has not processed; null unless both sides were read.</summary>
    public long? Lag => Cursor is { } cursor && OrthancLastSeq is { } last ? Math.Max(0, last - cursor) : null;
}

/// <summary>One job kind's queue: its unfinished jobs, and whether this worker has a handler for the kind.</summary>
internal sealed record QueueReport(JobKindDepth Depth, bool HandledHere);

internal sealed record SystemStatus(
    string WorkerVersion,
    DateTimeOffset StartedAt,
    IReadOnlyList<DependencyCheck> Dependencies,
    string? OrthancVersion,
    string? PostgresVersion,
    SchemaReport? Schema,
    ChangeFeedReport ChangeFeed,
    IReadOnlyList<QueueReport>? Queues,
    LocalBackendReport LocalBackend,
    SlurmBackendReport SlurmBackend,
    string DefaultBackend);

/// <summary>
/// Asks each dependency right now (no cache): an admin running `orthancseg status` after fixing something
/// wants to see the fix. A dependency that is down is a result to report, not an error of the call: every part
/// is read on its own, in parallel, under a timeout, and a part that could not be read says why.
/// </summary>
internal sealed class SystemStatusReporter(
    NpgsqlDataSource dataSource,
    OrthancClient orthanc,
    ChangeCursor cursor,
    JobQueue queue,
    IEnumerable<JobKindRegistration> kinds,
    BackendStatus backends)
{
    private static readonly TimeSpan CheckTimeout = TimeSpan.FromSeconds(5);

    public static string WorkerVersion { get; } =
        typeof(SystemStatusReporter).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    public static DateTimeOffset StartedAt { get; } = new(Process.GetCurrentProcess().StartTime.ToUniversalTime(), TimeSpan.Zero);

    public async Task<SystemStatus> GetAsync(CancellationToken cancellationToken)
    {
        var postgresTask = CheckPostgresAsync(cancellationToken);
        var orthancTask = CheckOrthancAsync(cancellationToken);
        var cursorTask = ReadCursorAsync(cancellationToken);
        var lastChangeTask = ReadOrthancLastChangeAsync(cancellationToken);
        var queuesTask = ReadQueuesAsync(cancellationToken);
        var localTask = backends.GetLocalAsync(cancellationToken);
        var slurmTask = backends.GetSlurmAsync(cancellationToken);
        await Task.WhenAll(postgresTask, orthancTask, cursorTask, lastChangeTask, queuesTask, localTask, slurmTask);

        var (postgres, postgresVersion, schema) = postgresTask.Result;
        var (orthancCheck, orthancVersion) = orthancTask.Result;
        var (seq, advancedAt, cursorError) = cursorTask.Result;
        var (last, lastError) = lastChangeTask.Result;
        var slurm = slurmTask.Result;
        var dependencies = new List<DependencyCheck> { postgres, orthancCheck };
        if (slurm.Configured)
        {
            dependencies.Add(new DependencyCheck("slurm", slurm.Healthy, slurm.Detail));
        }
        var feed = new ChangeFeedReport(seq, advancedAt, last, string.Join("; ", new[] { cursorError, lastError }.OfType<string>()));
        return new SystemStatus(WorkerVersion, StartedAt, dependencies, orthancVersion, postgresVersion, schema, feed, queuesTask.Result,
            localTask.Result, slurm, backends.DefaultBackend);
    }

    private async Task<(DependencyCheck Check, string? Version, SchemaReport? Schema)> CheckPostgresAsync(CancellationToken cancellationToken)
    {
        var target = MigrationHostedService.Describe(dataSource);
        var answer = await AskAsync(async ct =>
        {
            await using var command = dataSource.CreateCommand("""
                SELECT current_setting('server_version'), m.version, m.name, m.applied_at
                FROM (SELECT 1) AS one
                LEFT JOIN LATERAL (SELECT version, name, applied_at FROM schema_migrations ORDER BY version DESC LIMIT 1) AS m ON true
                """);
            await using var reader = await command.ExecuteReaderAsync(ct);
            await reader.ReadAsync(ct);
            var schema = reader.IsDBNull(1) ? null : new SchemaReport(reader.GetInt32(1), reader.GetString(2), reader.GetFieldValue<DateTimeOffset>(3));
            return (Version: reader.GetString(0), Schema: schema);
        }, cancellationToken);
        return answer.Error is { } error
            ? (new DependencyCheck("postgresql", false, $"PostgreSQL at {target}: {error}"), null, null)
            : (new DependencyCheck("postgresql", true, $"PostgreSQL {answer.Value.Version} at {target}"), answer.Value.Version, answer.Value.Schema);
    }

    private async Task<(long? Seq, DateTimeOffset? AdvancedAt, string? Error)> ReadCursorAsync(CancellationToken cancellationToken)
    {
        var answer = await AskAsync(cursor.ReadAsync, cancellationToken);
        return answer.Error is { } error ? (null, null, $"the stored cursor could not be read: {error}") : (answer.Value.Seq, answer.Value.AdvancedAt, null);
    }

    private async Task<IReadOnlyList<QueueReport>?> ReadQueuesAsync(CancellationToken cancellationToken)
    {
        var answer = await AskAsync(queue.GetDepthsAsync, cancellationToken);
        if (answer.Error is not null)
        {
            return null;
        }
        // Every kind this worker runs is listed, idle ones with zeros, so an admin sees what could queue; a kind with open jobs that
        // only another worker version runs is listed too.
        var handled = kinds.Select(k => k.Kind).ToHashSet(StringComparer.Ordinal);
        var open = answer.Value.ToDictionary(d => d.Kind, StringComparer.Ordinal);
        return [.. handled.Union(open.Keys).Order(StringComparer.Ordinal)
            .Select(kind => new QueueReport(open.GetValueOrDefault(kind) ?? new JobKindDepth(kind, 0, 0, 0, 0, null), handled.Contains(kind)))];
    }

    private async Task<(DependencyCheck Check, string? Version)> CheckOrthancAsync(CancellationToken cancellationToken)
    {
        var answer = await AskAsync(orthanc.GetSystemAsync, cancellationToken);
        if (answer.Error is { } error)
        {
            return (new DependencyCheck("orthanc", false, error == Unanswered ? $"Orthanc GET {new Uri(orthanc.BaseAddress, "system")} {Unanswered}" : error), null);
        }
        var system = answer.Value;
        return (new DependencyCheck("orthanc", true, $"Orthanc {system.Version} (\"{system.Name}\", REST API {system.ApiVersion}) at {orthanc.BaseAddress}"),
            system.Version);
    }

    private async Task<(long? Seq, string? Error)> ReadOrthancLastChangeAsync(CancellationToken cancellationToken)
    {
        var answer = await AskAsync(orthanc.GetLastChangeSeqAsync, cancellationToken);
        return answer.Error switch
        {
            null => (answer.Value, null),
            var error when error == Unanswered => (null, $"Orthanc's last change (GET /changes?last) {Unanswered}"),
            var error => (null, $"Orthanc's last change is unknown: {error}"),
        };
    }

    /// <summary>What <see cref="AskAsync{T}"/> answers for a dependency that did not answer within <see cref="CheckTimeout"/>.</summary>
    private static readonly string Unanswered = $"did not answer within {CheckTimeout.TotalSeconds:0} s";

    /// <summary>
    /// Runs one read against PostgreSQL or Orthanc under the check timeout: a dependency that is down or slow is an answer (its error,
    /// or <see cref="Unanswered"/>), not an exception.
    /// </summary>
    private static async Task<(T Value, string? Error)> AskAsync<T>(Func<CancellationToken, Task<T>> read, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(CheckTimeout);
        try
        {
            return (await read(timeout.Token), null);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return (default!, Unanswered);
        }
        catch (Exception e) when (e is NpgsqlException or OrthancException)
        {
            return (default!, e.Message);
        }
    }
}
