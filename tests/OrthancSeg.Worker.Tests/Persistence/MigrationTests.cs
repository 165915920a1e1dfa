using OrthancSeg.Worker.Persistence;

namespace OrthancSeg.Worker.Tests.Persistence;

public sealed class MigrationTests
{
    [Fact]
    public void The_embedded_migrations_start_with_the_foundation_and_are_numbered_without_gaps()
    {
        var migrations = Migration.Embedded;

        Assert.Equal("foundation", migrations[0].Name);
        Assert.Equal(Enumerable.Range(1, migrations.Count), migrations.Select(m => m.Version));
        Assert.Contains("CREATE TABLE jobs", migrations[0].Sql, StringComparison.Ordinal);
    }

    [Fact]
    public void The_checksum_changes_when_the_script_changes()
    {
        Assert.NotEqual(new Migration(1, "a", "SELECT 1").Checksum, new Migration(1, "a", "SELECT 2").Checksum);
    }
}
