extern alias WorkerHost;

using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using OrthancSeg.IntegrationTests.Fixtures;
using WorkerHost::OrthancSeg.Worker.Persistence;

namespace OrthancSeg.IntegrationTests.Worker;

[Collection(PostgresCollection.Name)]
public sealed class ChangeCursorTests(PostgresServer server)
{
    [Fact]
    public async Task The_change_cursor_starts_at_zero_and_only_moves_forward()
    {
        await using var dataSource = NpgsqlDataSource.Create(await server.CreateDatabaseAsync("cursor"));
        await new MigrationRunner(dataSource, NullLogger<MigrationRunner>.Instance).ApplyAsync(CancellationToken.None);
        var cursor = new ChangeCursor(dataSource);

        Assert.Equal(0, await cursor.GetAsync(CancellationToken.None));
        Assert.Equal(42, await cursor.AdvanceAsync(42, CancellationToken.None));
        Assert.Equal(42, await cursor.AdvanceAsync(7, CancellationToken.None));
        Assert.Equal(42, await cursor.GetAsync(CancellationToken.None));
    }
}
