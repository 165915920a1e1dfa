using System.Text.Json;
using Npgsql;
using OrthancSeg.Contracts.V1;
using OrthancSeg.IntegrationTests.Fixtures;

namespace OrthancSeg.IntegrationTests.Worker;

/// <summary>
/// GetSystemStatus and `orthancseg status` / `dead-letters show` against a built worker whose Orthanc is down: the call still answers, says
/// what it could read (PostgreSQL, the schema, the stored cursor, the queues, the local backend) and what not (Orthanc, its last change).
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class SystemStatusTests(WorkerProcess worker) : IClassFixture<WorkerProcess>
{
    private static readonly int LatestMigration = Directory.GetFiles(
            Path.Combine(RepositoryPaths.Root, "worker", "OrthancSeg.Worker", "Persistence", "Migrations"), "*.sql")
        .Select(f => int.Parse(Path.GetFileName(f)[..4], System.Globalization.CultureInfo.InvariantCulture)).Max();

    private async Task<GetSystemStatusResponse> StatusAsync()
    {
        using var channel = worker.CreateChannel();
        // The viewer role is enough: status is a read.
        return await new SystemService.SystemServiceClient(channel).GetSystemStatusAsync(new GetSystemStatusRequest(), WorkerProcess.Bearer(worker.ViewerToken));
    }

    private async Task<long> InsertJobAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(worker.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private Task<CliResult> CliAsync(params string[] arguments) =>
        CliProcess.RunAsync([.. arguments, "--url", worker.Address, "--token-file", worker.AdminTokenFile]);

    [Fact]
    public async Task With_orthanc_down_status_answers_with_orthanc_unhealthy_and_still_reports_the_database_the_schema_and_the_stored_cursor()
    {
        var status = await StatusAsync();

        Assert.False(Assert.Single(status.Dependencies, d => d.Name == "orthanc").Healthy);
        Assert.True(Assert.Single(status.Dependencies, d => d.Name == "postgresql").Healthy);
        Assert.DoesNotContain(status.Dependencies, d => d.Name == "slurm");
        Assert.Equal("", status.OrthancVersion);
        Assert.Matches(@"^\d+(\.\d+)?", status.PostgresqlVersion);
        Assert.Equal(LatestMigration, status.Schema.Version);
        Assert.True(status.ChangeFeed.CursorRead);
        Assert.Equal(0, status.ChangeFeed.Cursor);
        Assert.NotNull(status.ChangeFeed.CursorAdvancedAt);
        Assert.False(status.ChangeFeed.OrthancAnswered);
        Assert.Equal(0, status.ChangeFeed.Lag);
        Assert.Contains("Orthanc's last change is unknown", status.ChangeFeed.Detail, StringComparison.Ordinal);
        Assert.True(status.QueuesRead);
        Assert.Contains(status.Queues, q => q.Kind == "series" && q.HandledHere);
        Assert.False(status.SlurmBackend.Configured);
        Assert.Equal("local", status.DefaultBackend);
        // No GPU configured and no nvidia-smi on this machine: CPU runs only, with every CPU as capacity and nothing admitted.
        Assert.True(status.LocalBackend.Healthy, status.LocalBackend.Detail);
        Assert.Equal(Environment.ProcessorCount, status.LocalBackend.CpusCapacity);
        Assert.Equal(0, status.LocalBackend.CpusAdmitted);
    }

    [Fact]
    public async Task A_queued_and_a_dead_job_are_counted_in_their_kinds_queue_with_how_long_the_oldest_has_waited()
    {
        // A backfill due tomorrow waits in the queue without being claimed; it was enqueued ten minutes ago.
        await InsertJobAsync("""
            INSERT INTO jobs (kind, idempotency_key, payload, max_attempts, not_before, created_at)
            VALUES ('backfill', 'status-queued', '{}', 3, now() + interval '1 day', now() - interval '10 minutes') RETURNING id
            """);
        await InsertJobAsync("""
            INSERT INTO jobs (kind, idempotency_key, payload, state, attempts, max_attempts, last_error, finished_at)
            VALUES ('backfill', 'status-dead', '{}', 'dead', 3, 3, 'gave up', now()) RETURNING id
            """);

        var status = await StatusAsync();

        var backfill = Assert.Single(status.Queues, q => q.Kind == "backfill");
        Assert.Equal((1L, 0L, 0L, 1L), (backfill.Queued, backfill.Retrying, backfill.Running, backfill.Dead));
        Assert.True(backfill.HandledHere);
        Assert.InRange(DateTimeOffset.UtcNow - backfill.OldestWaitingSince.ToDateTimeOffset(), TimeSpan.FromMinutes(10), TimeSpan.FromMinutes(15));

        var cli = await CliAsync("status", "--json");
        using var json = JsonDocument.Parse(cli.Stdout);
        var printed = json.RootElement.GetProperty("queues").EnumerateArray().Single(q => q.GetProperty("kind").GetString() == "backfill");
        Assert.Equal(1, printed.GetProperty("queued").GetInt64());
        Assert.Equal(1, printed.GetProperty("dead").GetInt64());
        Assert.True(printed.GetProperty("oldestWaitingSeconds").GetDouble() >= 600);

        var table = await CliAsync("status");
        Assert.Contains(table.Stdout.Split('\n'), l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^backfill\s+1\s+0\s+0\s+1\s+1\dm\d\ds$"));
    }

    [Fact]
    public async Task The_cli_prints_every_section_and_exits_1_while_orthanc_is_down()
    {
        var result = await CliAsync("status");

        Assert.Equal(1, result.ExitCode);
        var lines = result.Stdout.Split('\n');
        foreach (var section in new[] { "DEPENDENCIES", "VERSIONS", "CHANGE FEED", "QUEUES", "GPUS", "BACKENDS" })
        {
            Assert.Contains(section, lines);
        }
        Assert.Contains(lines, l => l.StartsWith("orthanc", StringComparison.Ordinal) && l.Contains("UNHEALTHY", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("schema", StringComparison.Ordinal) && l.Contains($"{LatestMigration:D4}_", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("lag", StringComparison.Ordinal) && l.Contains("unknown", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("slurm", StringComparison.Ordinal) && l.Contains("not configured", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("local (default)", StringComparison.Ordinal) && l.Contains(" healthy ", StringComparison.Ordinal));

        var json = await CliAsync("status", "--json");
        Assert.Equal(1, json.ExitCode);
        using var document = JsonDocument.Parse(json.Stdout);
        var feed = document.RootElement.GetProperty("changeFeed");
        Assert.Equal(0, feed.GetProperty("cursor").GetInt64());
        Assert.Equal(JsonValueKind.Null, feed.GetProperty("orthancLastSeq").ValueKind);
        Assert.Equal(JsonValueKind.Null, feed.GetProperty("lag").ValueKind);
        Assert.Equal(LatestMigration, document.RootElement.GetProperty("versions").GetProperty("schema").GetProperty("version").GetInt32());
        Assert.False(document.RootElement.GetProperty("slurm").GetProperty("configured").GetBoolean());
    }

    [Fact]
    public async Task Dead_letters_show_prints_the_error_attempts_payload_and_how_to_retry_and_refuses_a_job_that_is_not_dead()
    {
        var dead = await InsertJobAsync("""
            INSERT INTO jobs (kind, idempotency_key, payload, state, attempts, max_attempts, last_error, finished_at)
            VALUES ('segmentation', 'segmentation:status-show', '{"orthancInstanceId":"0a1b2c","labels":[1,2,3]}', 'dead', 5, 5,
                    'The SEG references no instance of a recorded case', now())
            RETURNING id
            """);
        var queued = await InsertJobAsync("""
            INSERT INTO jobs (kind, idempotency_key, payload, max_attempts, not_before)
            VALUES ('segmentation', 'segmentation:status-later', '{}', 3, now() + interval '1 day') RETURNING id
            """);

        var shown = await CliAsync("dead-letters", "show", $"{dead}");

        Assert.True(shown.ExitCode == 0, shown.Stderr);
        var lines = shown.Stdout.Split('\n');
        Assert.Contains(lines, l => l.StartsWith("attempts", StringComparison.Ordinal) && l.Contains("5 of 5", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("payload orthancInstanceId", StringComparison.Ordinal) && l.EndsWith("0a1b2c", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("payload labels", StringComparison.Ordinal) && l.EndsWith("[3 item(s)]", StringComparison.Ordinal));
        Assert.Contains("The SEG references no instance of a recorded case", lines);
        Assert.Contains(lines, l => l.EndsWith($"orthancseg dead-letters retry {dead}", StringComparison.Ordinal));

        var json = await CliAsync("dead-letters", "show", $"{dead}", "--json");
        using var document = JsonDocument.Parse(json.Stdout);
        Assert.Equal("dead", document.RootElement.GetProperty("state").GetString());
        Assert.Equal(5, document.RootElement.GetProperty("attempts").GetInt32());

        var notDead = await CliAsync("dead-letters", "show", $"{queued}");
        Assert.Equal(1, notDead.ExitCode);
        Assert.Contains($"Job {queued} (segmentation segmentation:status-later) is not a dead letter: it is queued", notDead.Stderr, StringComparison.Ordinal);
    }
}
