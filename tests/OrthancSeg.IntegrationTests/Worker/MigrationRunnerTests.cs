extern alias WorkerHost;

using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using OrthancSeg.IntegrationTests.Fixtures;
using WorkerHost::OrthancSeg.Worker.Persistence;

namespace OrthancSeg.IntegrationTests.Worker;

[Collection(PostgresCollection.Name)]
public sealed class MigrationRunnerTests(PostgresServer server)
{
    [Fact]
    public async Task Migrations_apply_once_and_a_second_run_changes_nothing()
    {
        await using var dataSource = NpgsqlDataSource.Create(await server.CreateDatabaseAsync("migrate"));
        var runner = new MigrationRunner(dataSource, NullLogger<MigrationRunner>.Instance);

        var first = await runner.ApplyAsync(CancellationToken.None);
        var second = await runner.ApplyAsync(CancellationToken.None);

        Assert.Equal(Migration.Embedded.Select(m => m.Version), first);
        Assert.Empty(second);
        Assert.Equal(Migration.Embedded.Select(m => m.Version), await AppliedVersionsAsync(dataSource));
        // The foundation tables exist and are usable.
        await using var command = dataSource.CreateCommand("SELECT (SELECT last_seq FROM change_cursor), (SELECT count(*) FROM jobs), (SELECT count(*) FROM dead_letters)");
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal(0L, reader.GetInt64(0));
        Assert.Equal(0L, reader.GetInt64(1));
        Assert.Equal(0L, reader.GetInt64(2));
    }

    [Fact]
    public async Task Two_runners_racing_both_succeed_and_apply_each_migration_once()
    {
        var connectionString = await server.CreateDatabaseAsync("migrate");
        await using var dataSourceA = NpgsqlDataSource.Create(connectionString);
        await using var dataSourceB = NpgsqlDataSource.Create(connectionString);
        var runnerA = new MigrationRunner(dataSourceA, NullLogger<MigrationRunner>.Instance);
        var runnerB = new MigrationRunner(dataSourceB, NullLogger<MigrationRunner>.Instance);

        var results = await Task.WhenAll(runnerA.ApplyAsync(CancellationToken.None), runnerB.ApplyAsync(CancellationToken.None));

        // 0001 creates tables without IF NOT EXISTS, so a second application would have failed one runner.
        Assert.Equal(Migration.Embedded.Select(m => m.Version), results.SelectMany(r => r).Order());
        Assert.Equal(Migration.Embedded.Select(m => m.Version), await AppliedVersionsAsync(dataSourceA));
    }

    [Fact]
    public async Task A_failing_migration_is_rolled_back_and_named_and_later_ones_wait()
    {
        await using var dataSource = NpgsqlDataSource.Create(await server.CreateDatabaseAsync("migrate"));
        Migration[] migrations =
        [
            new(1, "create_a", "CREATE TABLE a (id int)"),
            new(2, "broken", "CREATE TABLE b (id int); INSERT INTO nowhere VALUES (1)"),
            new(3, "create_c", "CREATE TABLE c (id int)"),
        ];
        var runner = new MigrationRunner(dataSource, NullLogger<MigrationRunner>.Instance, migrations);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => runner.ApplyAsync(CancellationToken.None));

        Assert.Contains("0002_broken", error.Message, StringComparison.Ordinal);
        Assert.Contains("nowhere", error.Message, StringComparison.Ordinal);
        Assert.Equal([1], await AppliedVersionsAsync(dataSource));
        await using var command = dataSource.CreateCommand("SELECT to_regclass('b') IS NULL AND to_regclass('c') IS NULL");
        Assert.True((bool)(await command.ExecuteScalarAsync())!);
    }

    [Fact]
    public async Task A_database_migrated_by_a_newer_worker_is_refused_with_the_unknown_version()
    {
        await using var dataSource = NpgsqlDataSource.Create(await server.CreateDatabaseAsync("migrate"));
        await new MigrationRunner(dataSource, NullLogger<MigrationRunner>.Instance, [new(1, "one", "SELECT 1"), new(2, "two", "SELECT 2")])
            .ApplyAsync(CancellationToken.None);
        var older = new MigrationRunner(dataSource, NullLogger<MigrationRunner>.Instance, [new(1, "one", "SELECT 1")]);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => older.ApplyAsync(CancellationToken.None));

        Assert.Contains("0002_two", error.Message, StringComparison.Ordinal);
    }

    private static async Task<List<int>> AppliedVersionsAsync(NpgsqlDataSource dataSource)
    {
        await using var command = dataSource.CreateCommand("SELECT version FROM schema_migrations ORDER BY version");
        await using var reader = await command.ExecuteReaderAsync();
        var versions = new List<int>();
        while (await reader.ReadAsync())
        {
            versions.Add(reader.GetInt32(0));
        }
        return versions;
    }
}
