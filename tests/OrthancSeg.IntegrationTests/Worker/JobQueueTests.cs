extern alias WorkerHost;

using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using OrthancSeg.IntegrationTests.Fixtures;
using WorkerHost::OrthancSeg.Worker.Errors;
using WorkerHost::OrthancSeg.Worker.Jobs;
using WorkerHost::OrthancSeg.Worker.Persistence;

namespace OrthancSeg.IntegrationTests.Worker;

[Collection(PostgresCollection.Name)]
public sealed class JobQueueTests(PostgresServer server) : IAsyncLifetime
{
    private NpgsqlDataSource _dataSource = null!;

    public async Task InitializeAsync()
    {
        _dataSource = NpgsqlDataSource.Create(await server.CreateDatabaseAsync("jobs"));
        await new MigrationRunner(_dataSource, NullLogger<MigrationRunner>.Instance).ApplyAsync(CancellationToken.None);
    }

    public async Task DisposeAsync() => await _dataSource.DisposeAsync();

    [Fact]
    public async Task Enqueueing_the_same_key_twice_gives_one_job()
    {
        var queue = Queue();

        var first = await queue.EnqueueAsync("fetch-series", "series-1", """{"series":"a"}""");
        var second = await queue.EnqueueAsync("fetch-series", "series-1", """{"series":"changed"}""");
        var otherKind = await queue.EnqueueAsync("convert-series", "series-1", "{}");

        Assert.True(first.Created);
        Assert.False(second.Created);
        Assert.Equal(first.Id, second.Id);
        Assert.True(otherKind.Created);
        var claimed = await queue.ClaimAsync("worker-a", ["fetch-series"]);
        Assert.NotNull(claimed);
        Assert.Equal("""{"series": "a"}""", claimed.PayloadJson);
    }

    [Fact]
    public async Task Enqueue_rejects_a_payload_that_is_not_json()
    {
        var error = await Assert.ThrowsAsync<ArgumentException>(() => Queue().EnqueueAsync("fetch-series", "k", "{not json"));
        Assert.Contains("not valid JSON", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Concurrent_claimers_never_get_the_same_job()
    {
        var queue = Queue();
        const int jobs = 40;
        for (var i = 0; i < jobs; i++)
        {
            await queue.EnqueueAsync("work", $"key-{i}", "{}");
        }

        async Task<List<long>> Claimer(string owner)
        {
            var mine = new List<long>();
            while (await queue.ClaimAsync(owner) is { } job)
            {
                mine.Add(job.Id.Value);
            }
            return mine;
        }
        var results = await Task.WhenAll(Enumerable.Range(0, 4).Select(i => Claimer($"claimer-{i}")));

        var all = results.SelectMany(r => r).ToList();
        Assert.Equal(jobs, all.Count);
        Assert.Equal(jobs, all.Distinct().Count());
    }

    [Fact]
    public async Task A_job_is_not_claimed_before_its_not_before_time()
    {
        var queue = Queue();
        await queue.EnqueueAsync("work", "later", "{}", notBefore: DateTimeOffset.UtcNow.AddHours(1));

        Assert.Null(await queue.ClaimAsync("worker-a"));
    }

    [Fact]
    public async Task An_expired_lease_is_reclaimed_and_the_old_claimer_can_no_longer_finish()
    {
        // A lease no stall of this test can outlive; the test then ends it by moving its expiry into the past.
        var queue = Queue(lease: TimeSpan.FromMinutes(1));
        await queue.EnqueueAsync("work", "k", "{}");
        var first = await queue.ClaimAsync("worker-a");
        Assert.NotNull(first);
        Assert.Null(await queue.ClaimAsync("worker-b"));

        await using (var expire = _dataSource.CreateCommand("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE lease_owner = 'worker-a'"))
        {
            Assert.Equal(1, await expire.ExecuteNonQueryAsync());
        }
        var second = await queue.ClaimAsync("worker-b");
        Assert.NotNull(second);

        Assert.Equal(first.Id, second.Id);
        Assert.Equal(2, second.Attempt);
        await Assert.ThrowsAsync<JobLeaseLostException>(() => queue.CompleteAsync(first));
        await queue.CompleteAsync(second);
        Assert.Equal("succeeded", await StateAsync(first.Id));
    }

    [Fact]
    public async Task At_start_up_leases_of_ended_processes_of_this_host_are_released_and_all_others_kept()
    {
        var queue = Queue(lease: TimeSpan.FromMinutes(5));
        using var sleeper = System.Diagnostics.Process.Start("sleep", "60");
        try
        {
            var sleeperStart = JobOwner.StartTime(sleeper.Id);
            Assert.NotNull(sleeperStart);
            var host = Environment.MachineName;
            var owners = new Dictionary<string, bool>
            {
                [$"{host}/{int.MaxValue - 1}@12345/0"] = true, // no such process
                [$"{host}/{sleeper.Id}@{sleeperStart + 1}/0"] = true, // its pid now belongs to another process
                [$"{host}/{sleeper.Id}@{sleeperStart}/0"] = false, // alive
                [JobOwner.For("0")] = false, // this very process
                [$"another-host/{int.MaxValue - 1}@12345/0"] = false, // cannot be checked from here
                [$"{host}/{int.MaxValue - 1}/0"] = false, // not this format
            };
            foreach (var (owner, _) in owners)
            {
                await queue.EnqueueAsync("work", owner, "{}");
                Assert.NotNull(await queue.ClaimAsync(owner));
            }

            Assert.Equal(2, await queue.ReleaseLeasesOfEndedProcessesAsync(CancellationToken.None));

            await using var command = _dataSource.CreateCommand("SELECT lease_owner, lease_expires_at <= now() FROM jobs");
            await using var reader = await command.ExecuteReaderAsync();
            var released = new Dictionary<string, bool>();
            while (await reader.ReadAsync())
            {
                released[reader.GetString(0)] = reader.GetBoolean(1);
            }
            Assert.Equal(owners.OrderBy(o => o.Key, StringComparer.Ordinal), released.OrderBy(o => o.Key, StringComparer.Ordinal));
            // A released job is claimed again at once, as its next attempt.
            var again = await queue.ClaimAsync("worker-b");
            Assert.NotNull(again);
            Assert.Equal(2, again.Attempt);
        }
        finally
        {
            sleeper.Kill();
        }
    }

    [Fact]
    public async Task A_long_job_extends_its_lease_until_it_finishes()
    {
        var queue = Queue(lease: TimeSpan.FromMinutes(1));
        await queue.EnqueueAsync("work", "long", "{}");
        var job = await queue.ClaimAsync("worker-a");
        Assert.NotNull(job);

        var extended = await queue.ExtendLeaseAsync(job);

        Assert.True(extended >= job.LeaseExpiresAt, $"{extended} < {job.LeaseExpiresAt}");
        await queue.CompleteAsync(job);
        await Assert.ThrowsAsync<JobLeaseLostException>(() => queue.ExtendLeaseAsync(job));
    }

    [Fact]
    public async Task A_claimer_only_gets_the_kinds_it_asks_for()
    {
        var queue = Queue();
        await queue.EnqueueAsync("convert", "a", "{}");

        Assert.Null(await queue.ClaimAsync("worker-a", ["fetch"]));
        Assert.Equal("convert", (await queue.ClaimAsync("worker-a", ["fetch", "convert"]))?.Kind);
    }

    [Fact]
    public async Task Failures_back_off_then_end_in_the_dead_letters_and_retry_brings_the_job_back()
    {
        var queue = Queue(baseDelay: TimeSpan.FromMilliseconds(100), maxDelay: TimeSpan.FromMilliseconds(400));
        var enqueued = await queue.EnqueueAsync("work", "flaky", """{"n":1}""", maxAttempts: 3);

        for (var attempt = 1; attempt <= 3; attempt++)
        {
            ClaimedJob? job = null;
            await ProcessRunner.WaitUntilAsync(async () => (job = await queue.ClaimAsync("worker-a")) is not null,
                TimeSpan.FromSeconds(10), $"attempt {attempt} to become due");
            Assert.Equal(attempt, job!.Attempt);
            var failure = await queue.FailAsync(job, $"boom {attempt}");
            if (attempt < 3)
            {
                // Both times come from the same now() in one statement, so the wait is exact: 100 ms, then 200 ms.
                var (notBefore, failedAt) = await ScheduleAsync(enqueued.Id);
                Assert.False(failure.Dead);
                Assert.Equal(notBefore, failure.RetryAt);
                Assert.Equal(TimeSpan.FromMilliseconds(100 << (attempt - 1)), notBefore - failedAt);
                Assert.Equal("failed", await StateAsync(enqueued.Id));
            }
            else
            {
                Assert.True(failure.Dead);
            }
        }

        await using (var command = _dataSource.CreateCommand("SELECT id, attempts, last_error FROM dead_letters"))
        await using (var reader = await command.ExecuteReaderAsync())
        {
            Assert.True(await reader.ReadAsync());
            Assert.Equal(enqueued.Id.Value, reader.GetInt64(0));
            Assert.Equal(3, reader.GetInt32(1));
            Assert.Equal("boom 3", reader.GetString(2));
        }
        Assert.Null(await queue.ClaimAsync("worker-a"));

        await queue.RetryDeadAsync(enqueued.Id);

        var retried = await queue.ClaimAsync("worker-a");
        Assert.NotNull(retried);
        Assert.Equal(1, retried.Attempt);
        await queue.CompleteAsync(retried);
        Assert.Equal("succeeded", await StateAsync(enqueued.Id));
    }

    [Fact]
    public async Task An_expired_lease_on_the_last_attempt_is_claimed_only_to_be_buried()
    {
        var queue = Queue(lease: TimeSpan.FromMilliseconds(200));
        var enqueued = await queue.EnqueueAsync("work", "k", "{}", maxAttempts: 1);
        Assert.NotNull(await queue.ClaimAsync("worker-a"));

        ClaimedJob? ending = null;
        await ProcessRunner.WaitUntilAsync(async () => (ending = await queue.ClaimAsync("worker-b")) is not null, TimeSpan.FromSeconds(10), "the expired job");

        Assert.Equal("dead", ending!.Ending);
        Assert.Equal(1, ending.Attempt);
        Assert.Contains("expired during the last attempt", ending.LastError, StringComparison.Ordinal);
        await queue.EndAsync(ending, "dead", null);
        Assert.Equal("dead", await StateAsync(enqueued.Id));
    }

    [Fact]
    public async Task A_hand_back_does_not_spend_the_attempt()
    {
        var queue = Queue();
        var enqueued = await queue.EnqueueAsync("work", "k", "{}", maxAttempts: 1);
        var first = await queue.ClaimAsync("worker-a");

        await queue.HandBackAsync(first!, "waiting for Orthanc: connection refused", TimeSpan.Zero);
        var second = await queue.ClaimAsync("worker-a");

        Assert.Equal(1, second!.Attempt);
        var job = await queue.GetAsync(enqueued.Id);
        Assert.Equal((1, 1), (job.Attempts, job.Waits));
        Assert.Equal("waiting for Orthanc: connection refused", job.LastError);
    }

    [Fact]
    public async Task A_cancelled_waiting_job_is_claimed_only_to_be_ended_and_never_runs()
    {
        var queue = Queue();
        var enqueued = await queue.EnqueueAsync("work", "k", "{}", notBefore: DateTimeOffset.UtcNow.AddHours(1));

        var requested = await queue.RequestCancelAsync(enqueued.Id);
        var claimed = await queue.ClaimAsync("worker-a");

        Assert.Equal("queued", requested.State);
        Assert.Equal("cancelled", claimed!.Ending);
        Assert.Equal(0, claimed.Attempt);
        await queue.EndAsync(claimed, "cancelled", "cancelled by an admin");
        Assert.Equal("cancelled", await StateAsync(enqueued.Id));
        Assert.Null(await queue.ClaimAsync("worker-a"));
        var again = await Assert.ThrowsAsync<FailedPreconditionException>(() => queue.RequestCancelAsync(enqueued.Id));
        Assert.Contains("cancelled", again.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_running_job_learns_of_its_cancel_at_its_heartbeat()
    {
        var queue = Queue();
        var enqueued = await queue.EnqueueAsync("work", "k", "{}");
        var job = await queue.ClaimAsync("worker-a");
        Assert.False((await queue.HeartbeatAsync(job!, extend: false)).CancelRequested);

        await queue.RequestCancelAsync(enqueued.Id);

        Assert.True((await queue.HeartbeatAsync(job!, extend: true)).CancelRequested);
    }

    [Fact]
    public async Task A_dead_letter_is_revived_when_its_work_is_seen_again_and_only_when_asked()
    {
        var queue = Queue();
        var enqueued = await queue.EnqueueAsync("series", "s@1", "{}", maxAttempts: 1);
        await queue.FailAsync((await queue.ClaimAsync("worker-a"))!, "Orthanc answered 500");
        Assert.Equal("dead", await StateAsync(enqueued.Id));

        var plain = await queue.EnqueueAsync("series", "s@1", "{}");
        Assert.Equal(("dead", false), (await StateAsync(enqueued.Id), plain.Created));
        var revived = await queue.EnqueueAsync("series", "s@1", "{}", reviveDead: true);

        Assert.True(revived.Created);
        Assert.Equal(enqueued.Id, revived.Id);
        var job = await queue.GetAsync(enqueued.Id);
        Assert.Equal(("queued", 0), (job.State, job.Attempts));
        Assert.NotNull(await queue.ClaimAsync("worker-a"));
    }

    [Fact]
    public async Task Only_the_attempt_holding_the_lease_passes_the_fence()
    {
        var queue = Queue(lease: TimeSpan.FromMinutes(1));
        await queue.EnqueueAsync("work", "k", "{}");
        var stale = (await queue.ClaimAsync("worker-a"))!;
        await using (var expire = _dataSource.CreateCommand("UPDATE jobs SET lease_expires_at = now() - interval '1 second'"))
        {
            await expire.ExecuteNonQueryAsync();
        }
        var current = (await queue.ClaimAsync("worker-b"))!;

        await using var connection = await _dataSource.OpenConnectionAsync();
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await Assert.ThrowsAsync<JobLeaseLostException>(() => JobQueue.FenceAsync(stale, connection, transaction, CancellationToken.None));
        }
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await JobQueue.FenceAsync(current, connection, transaction, CancellationToken.None);
            await JobQueue.CompleteAsync(current, connection, transaction, CancellationToken.None);
            await transaction.CommitAsync();
        }
        Assert.Equal("succeeded", (await queue.GetAsync(current.Id)).State);
    }

    [Fact]
    public async Task A_job_cancelled_before_its_heartbeat_noticed_does_not_pass_the_fence()
    {
        var queue = Queue();
        var enqueued = await queue.EnqueueAsync("work", "k", "{}");
        var job = (await queue.ClaimAsync("worker-a"))!;
        await queue.RequestCancelAsync(enqueued.Id);

        await using var connection = await _dataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await Assert.ThrowsAsync<JobCancelRequestedException>(() => JobQueue.FenceAsync(job, connection, transaction, CancellationToken.None));
    }

    [Fact]
    public async Task Retrying_a_job_that_is_not_dead_or_does_not_exist_says_so()
    {
        var queue = Queue();
        var enqueued = await queue.EnqueueAsync("work", "k", "{}");

        var wrongState = await Assert.ThrowsAsync<FailedPreconditionException>(() => queue.RetryDeadAsync(enqueued.Id));
        var missing = await Assert.ThrowsAsync<NotFoundException>(() => queue.RetryDeadAsync(new JobId(999_999)));

        Assert.Contains("queued", wrongState.Message, StringComparison.Ordinal);
        Assert.Contains("999999", missing.Message, StringComparison.Ordinal);
    }

    private JobQueue Queue(TimeSpan? lease = null, TimeSpan? baseDelay = null, TimeSpan? maxDelay = null) => new(_dataSource, Options.Create(new JobQueueOptions
    {
        LeaseDuration = lease ?? TimeSpan.FromMinutes(5),
        RetryBaseDelay = baseDelay ?? TimeSpan.FromSeconds(10),
        RetryMaxDelay = maxDelay ?? TimeSpan.FromHours(1),
    }), new JobSignal());

    private async Task<(DateTimeOffset NotBefore, DateTimeOffset UpdatedAt)> ScheduleAsync(JobId id)
    {
        await using var command = _dataSource.CreateCommand("SELECT not_before, updated_at FROM jobs WHERE id = @id");
        command.Parameters.AddWithValue("id", id.Value);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        return (reader.GetFieldValue<DateTimeOffset>(0), reader.GetFieldValue<DateTimeOffset>(1));
    }

    private async Task<string> StateAsync(JobId id)
    {
        await using var command = _dataSource.CreateCommand("SELECT state FROM jobs WHERE id = @id");
        command.Parameters.AddWithValue("id", id.Value);
        return (string)(await command.ExecuteScalarAsync())!;
    }
}
