using Npgsql;
using NpgsqlTypes;

namespace OrthancSeg.Worker.Persistence;

/// <summary>
/// Brings the database schema up to date: applies the numbered migrations that are missing, in order, each in
/// its own transaction, and records them in schema_migrations. A session advisory lock serialises runners, so
/// replicas starting together wait for each other instead of applying a migration twice.
/// </summary>
internal sealed partial class MigrationRunner
{
    // An arbitrary constant that no other feature uses as an advisory lock key ("OSMIGR" in ASCII).
    private const long AdvisoryLockKey = 0x4F534D494752;

    private readonly NpgsqlDataSource _dataSource;
    private readonly ILogger<MigrationRunner> _logger;
    private readonly IReadOnlyList<Migration> _migrations;

    public MigrationRunner(NpgsqlDataSource dataSource, ILogger<MigrationRunner> logger)
        : this(dataSource, logger, Migration.Embedded)
    {
    }

    public MigrationRunner(NpgsqlDataSource dataSource, ILogger<MigrationRunner> logger, IReadOnlyList<Migration> migrations)
    {
        _dataSource = dataSource;
        _logger = logger;
        _migrations = migrations;
    }

    /// <summary>Applies what is missing and returns the versions this call applied (empty when up to date).</summary>
    public async Task<IReadOnlyList<int>> ApplyAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await ExecuteAsync(connection, "SELECT pg_advisory_lock(@key)", cancellationToken, new NpgsqlParameter<long>("key", AdvisoryLockKey));
        try
        {
            return await ApplyLockedAsync(connection, cancellationToken);
        }
        finally
        {
            // The pool would reset the session anyway; unlocking explicitly lets a waiting replica go on at once.
            if (connection.FullState == System.Data.ConnectionState.Open)
            {
                await ExecuteAsync(connection, "SELECT pg_advisory_unlock(@key)", CancellationToken.None, new NpgsqlParameter<long>("key", AdvisoryLockKey));
            }
        }
    }

    private async Task<IReadOnlyList<int>> ApplyLockedAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await ExecuteAsync(connection, """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """, cancellationToken);

        var applied = new Dictionary<int, (string Name, string Checksum)>();
        await using (var command = new NpgsqlCommand("SELECT version, name, checksum FROM schema_migrations", connection))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                applied[reader.GetInt32(0)] = (reader.GetString(1), reader.GetString(2));
            }
        }

        var known = _migrations.Select(m => m.Version).ToHashSet();
        var unknown = applied.Keys.Where(v => !known.Contains(v)).Order().ToList();
        if (unknown.Count > 0)
        {
            throw new InvalidOperationException(
                $"The database has migration(s) {string.Join(", ", unknown.Select(v => $"{v:D4}_{applied[v].Name}"))} that this worker does not know: "
                + "a newer worker has migrated it. Run that version of the worker, or a database that matches this one.");
        }

        var done = new List<int>();
        foreach (var migration in _migrations)
        {
            if (applied.TryGetValue(migration.Version, out var record))
            {
                if (record.Checksum != migration.Checksum)
                {
                    LogChangedMigration(_logger, migration.Version, migration.Name);
                }
                continue;
            }
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            try
            {
                await ExecuteAsync(connection, migration.Sql, cancellationToken);
            }
            catch (PostgresException e)
            {
                throw new InvalidOperationException($"Migration {migration.Version:D4}_{migration.Name} failed: {e.MessageText} (SQLSTATE {e.SqlState})", e);
            }
            await ExecuteAsync(connection, "INSERT INTO schema_migrations (version, name, checksum) VALUES (@version, @name, @checksum)", cancellationToken,
                new NpgsqlParameter<int>("version", migration.Version),
                new NpgsqlParameter<string>("name", NpgsqlDbType.Text) { TypedValue = migration.Name },
                new NpgsqlParameter<string>("checksum", NpgsqlDbType.Text) { TypedValue = migration.Checksum });
            await transaction.CommitAsync(cancellationToken);
            LogApplied(_logger, migration.Version, migration.Name);
            done.Add(migration.Version);
        }
        if (done.Count == 0)
        {
            LogUpToDate(_logger, _migrations.Count == 0 ? 0 : _migrations[^1].Version);
        }
        return done;
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken, params NpgsqlParameter[] parameters)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.AddRange(parameters);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Applied database migration {Version:D4}_{Name}")]
    private static partial void LogApplied(ILogger logger, int version, string name);

    [LoggerMessage(Level = LogLevel.Information, Message = "Database schema is up to date at version {Version:D4}")]
    private static partial void LogUpToDate(ILogger logger, int version);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Migration {Version:D4}_{Name} was edited after it was applied; the edit has no effect on this database, add a new migration instead")]
    private static partial void LogChangedMigration(ILogger logger, int version, string name);
}
