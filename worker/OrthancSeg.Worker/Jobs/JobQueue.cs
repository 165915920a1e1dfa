using System.Text.Json;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Persistence;

namespace OrthancSeg.Worker.Jobs;

/// <summary>
/// The durable job queue of design §2 on the jobs table: at-least-once execution, idempotent enqueue,
/// claims with leases via FOR UPDATE SKIP LOCKED (replicas never block on or share a job), bounded
/// attempts with exponential backoff, then a dead letter an admin can retry. Every statement is short;
/// no transaction is held open while a job runs.
/// </summary>
internal sealed class JobQueue(NpgsqlDataSource dataSource, IOptions<JobQueueOptions> options)
{
    private readonly JobQueueOptions _options = options.Value;

    /// <summary>Adds a job unless one with the same kind and idempotency key exists (whatever its state); the payload of an existing job is kept.</summary>
    public async Task<EnqueuedJob> EnqueueAsync(string kind, string idempotencyKey, string payloadJson, int? maxAttempts = null,
        DateTimeOffset? notBefore = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(kind);
        ArgumentException.ThrowIfNullOrWhiteSpace(idempotencyKey);
        if (maxAttempts is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(maxAttempts), maxAttempts, "a job needs at least one attempt");
        }
        try
        {
            using var _ = JsonDocument.Parse(payloadJson);
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"The payload of a '{kind}' job is not valid JSON: {e.Message}", nameof(payloadJson), e);
        }

        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using (var insert = new NpgsqlCommand("""
            INSERT INTO jobs (kind, idempotency_key, payload, max_attempts, not_before)
            VALUES (@kind, @key, @payload, @max_attempts, coalesce(@not_before, now()))
            ON CONFLICT (kind, idempotency_key) DO NOTHING
            RETURNING id
            """, connection))
        {
            insert.Parameters.Add(Text("kind", kind));
            insert.Parameters.Add(Text("key", idempotencyKey));
            insert.Parameters.Add(new NpgsqlParameter<string>("payload", NpgsqlDbType.Jsonb) { TypedValue = payloadJson });
            insert.Parameters.Add(new NpgsqlParameter<int>("max_attempts", maxAttempts ?? _options.MaxAttempts));
            insert.Parameters.Add(new NpgsqlParameter("not_before", NpgsqlDbType.TimestampTz) { Value = (object?)notBefore ?? DBNull.Value });
            if (await insert.ExecuteScalarAsync(cancellationToken) is long id)
            {
                return new EnqueuedJob(new JobId(id), Created: true);
            }
        }
        // ON CONFLICT waited for the conflicting insert to commit, so this statement's fresh snapshot sees it.
        await using var select = new NpgsqlCommand("SELECT id FROM jobs WHERE kind = @kind AND idempotency_key = @key", connection);
        select.Parameters.Add(Text("kind", kind));
        select.Parameters.Add(Text("key", idempotencyKey));
        var existing = await select.ExecuteScalarAsync(cancellationToken)
            ?? throw new InvalidOperationException($"Job '{kind}' with key '{idempotencyKey}' conflicted on insert but cannot be found");
        return new EnqueuedJob(new JobId((long)existing), Created: false);
    }

    /// <summary>
    /// Leases the next due job to <paramref name="owner"/>, or returns null when nothing is due.
    /// Due: queued or failed with not_before passed, or running with an expired lease (its claimer died).
    /// An expired lease on the last attempt makes the job a dead letter instead of running it again.
    /// </summary>
    public async Task<ClaimedJob?> ClaimAsync(string owner, IReadOnlyCollection<string>? kinds = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(owner);
        await using var batch = dataSource.CreateBatch();

        var bury = new NpgsqlBatchCommand("""
            UPDATE jobs
            SET state = 'dead',
                last_error = format('lease of %s expired during the last attempt (%s of %s)', lease_owner, attempts, max_attempts),
                lease_expires_at = NULL,
                finished_at = now(),
                updated_at = now()
            WHERE state = 'running' AND lease_expires_at <= now() AND attempts >= max_attempts
              AND (@kinds::text[] IS NULL OR kind = ANY (@kinds))
            """);
        bury.Parameters.Add(Kinds(kinds));
        batch.BatchCommands.Add(bury);

        var claim = new NpgsqlBatchCommand("""
            WITH next AS (
                SELECT id
                FROM jobs
                WHERE ((state IN ('queued', 'failed') AND not_before <= now())
                       OR (state = 'running' AND lease_expires_at <= now() AND attempts < max_attempts))
                  AND (@kinds::text[] IS NULL OR kind = ANY (@kinds))
                ORDER BY not_before, id
                LIMIT 1
                FOR UPDATE SKIP LOCKED
            )
            UPDATE jobs AS j
            SET state = 'running',
                attempts = j.attempts + 1,
                lease_owner = @owner,
                lease_expires_at = now() + @lease,
                last_error = CASE WHEN j.state = 'running'
                                  THEN format('lease of %s expired during attempt %s', j.lease_owner, j.attempts)
                                  ELSE j.last_error END,
                updated_at = now()
            FROM next
            WHERE j.id = next.id
            RETURNING j.id, j.kind, j.idempotency_key, j.payload::text, j.attempts, j.max_attempts, j.lease_expires_at
            """);
        claim.Parameters.Add(Kinds(kinds));
        claim.Parameters.Add(Text("owner", owner));
        claim.Parameters.Add(new NpgsqlParameter<TimeSpan>("lease", NpgsqlDbType.Interval) { TypedValue = _options.LeaseDuration });
        batch.BatchCommands.Add(claim);

        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }
        return new ClaimedJob(new JobId(reader.GetInt64(0)), reader.GetString(1), reader.GetString(2), reader.GetString(3),
            reader.GetInt32(4), reader.GetInt32(5), owner, reader.GetFieldValue<DateTimeOffset>(6));
    }

    /// <summary>Pushes the lease of a long-running job forward; throws <see cref="JobLeaseLostException"/> when it was already lost.</summary>
    public async Task<DateTimeOffset> ExtendLeaseAsync(ClaimedJob job, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            UPDATE jobs
            SET lease_expires_at = now() + @lease, updated_at = now()
            WHERE id = @id AND state = 'running' AND lease_owner = @owner AND attempts = @attempt
            RETURNING lease_expires_at
            """);
        AddLease(command, job);
        command.Parameters.Add(new NpgsqlParameter<TimeSpan>("lease", NpgsqlDbType.Interval) { TypedValue = _options.LeaseDuration });
        return await command.ExecuteScalarAsync(cancellationToken) is DateTime expires
            ? new DateTimeOffset(expires, TimeSpan.Zero)
            : throw LeaseLost(job);
    }

    /// <summary>Records success; throws <see cref="JobLeaseLostException"/> when the lease was lost.</summary>
    public async Task CompleteAsync(ClaimedJob job, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            UPDATE jobs
            SET state = 'succeeded', lease_expires_at = NULL, finished_at = now(), updated_at = now()
            WHERE id = @id AND state = 'running' AND lease_owner = @owner AND attempts = @attempt
            """);
        AddLease(command, job);
        if (await command.ExecuteNonQueryAsync(cancellationToken) == 0)
        {
            throw LeaseLost(job);
        }
    }

    /// <summary>
    /// Records a failed attempt: the job runs again after the backoff, or, after its last attempt, becomes
    /// a dead letter. Throws <see cref="JobLeaseLostException"/> when the lease was lost.
    /// </summary>
    public async Task<JobFailure> FailAsync(ClaimedJob job, string error, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(error);
        await using var command = dataSource.CreateCommand("""
            UPDATE jobs
            SET state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'failed' END,
                not_before = CASE WHEN attempts >= max_attempts THEN not_before ELSE now() + @delay END,
                finished_at = CASE WHEN attempts >= max_attempts THEN now() END,
                last_error = @error,
                lease_expires_at = NULL,
                updated_at = now()
            WHERE id = @id AND state = 'running' AND lease_owner = @owner AND attempts = @attempt
            RETURNING state, not_before
            """);
        AddLease(command, job);
        command.Parameters.Add(new NpgsqlParameter<TimeSpan>("delay", NpgsqlDbType.Interval)
        {
            TypedValue = JobBackoff.Delay(job.Attempt, _options.RetryBaseDelay, _options.RetryMaxDelay),
        });
        command.Parameters.Add(Text("error", error));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            throw LeaseLost(job);
        }
        return reader.GetString(0) == "dead"
            ? new JobFailure(Dead: true, RetryAt: null)
            : new JobFailure(Dead: false, RetryAt: reader.GetFieldValue<DateTimeOffset>(1));
    }

    /// <summary>Puts a dead letter back on the queue with fresh attempts, due now.</summary>
    public async Task RetryDeadAsync(JobId id, CancellationToken cancellationToken = default)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using (var retry = new NpgsqlCommand("""
            UPDATE jobs
            SET state = 'queued', attempts = 0, not_before = now(), finished_at = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
            WHERE id = @id AND state = 'dead'
            """, connection))
        {
            retry.Parameters.Add(new NpgsqlParameter<long>("id", id.Value));
            if (await retry.ExecuteNonQueryAsync(cancellationToken) == 1)
            {
                return;
            }
        }
        await using var state = new NpgsqlCommand("SELECT state FROM jobs WHERE id = @id", connection);
        state.Parameters.Add(new NpgsqlParameter<long>("id", id.Value));
        throw await state.ExecuteScalarAsync(cancellationToken) is string current
            ? new FailedPreconditionException($"Job {id} is {current}, not dead; only dead letters can be retried")
            : new NotFoundException($"Job {id} does not exist");
    }

    /// <summary>
    /// Ends now the unexpired leases held by processes of this host that no longer exist (a worker that was killed or
    /// crashed), so their jobs are claimed again at once, with the usual attempt counting, instead of after the lease
    /// duration. Returns the number of jobs released.
    /// </summary>
    public async Task<int> ReleaseLeasesOfEndedProcessesAsync(CancellationToken cancellationToken)
    {
        string[] ended;
        await using (var select = dataSource.CreateCommand("""
            SELECT DISTINCT lease_owner FROM jobs
            WHERE state = 'running' AND lease_expires_at > now() AND starts_with(lease_owner, @prefix)
            """))
        {
            select.Parameters.Add(Text("prefix", JobOwner.HostPrefix));
            ended = [.. (await select.ReadStringsAsync(cancellationToken)).Where(JobOwner.HasEnded)];
        }
        if (ended.Length == 0)
        {
            return 0;
        }
        await using var release = dataSource.CreateCommand("""
            UPDATE jobs SET lease_expires_at = now(), updated_at = now()
            WHERE state = 'running' AND lease_owner = ANY (@owners) AND lease_expires_at > now()
            """);
        release.Parameters.Add(new NpgsqlParameter<string[]>("owners", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = ended });
        return await release.ExecuteNonQueryAsync(cancellationToken);
    }

    private static void AddLease(NpgsqlCommand command, ClaimedJob job)
    {
        command.Parameters.Add(new NpgsqlParameter<long>("id", job.Id.Value));
        command.Parameters.Add(Text("owner", job.LeaseOwner));
        command.Parameters.Add(new NpgsqlParameter<int>("attempt", job.Attempt));
    }

    private static JobLeaseLostException LeaseLost(ClaimedJob job) => new(
        $"Job {job.Id} ({job.Kind}) is no longer leased to {job.LeaseOwner} for attempt {job.Attempt}: "
        + "the lease expired and the job was claimed again, or it was finished elsewhere");

    private static NpgsqlParameter<string> Text(string name, string value) => new(name, NpgsqlDbType.Text) { TypedValue = value };

    private static NpgsqlParameter Kinds(IReadOnlyCollection<string>? kinds) =>
        new("kinds", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = kinds is null ? DBNull.Value : kinds.ToArray() };
}
