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
internal sealed class JobQueue(NpgsqlDataSource dataSource, IOptions<JobQueueOptions> options, JobSignal signal)
{
    private readonly JobQueueOptions _options = options.Value;

    /// <summary>Adds a job of <paramref name="kind"/> with a typed payload (serialised by <see cref="JobPayload"/>); see the text overload.</summary>
    public Task<EnqueuedJob> EnqueueAsync<TPayload>(string kind, string idempotencyKey, TPayload payload, int? maxAttempts = null,
        DateTimeOffset? notBefore = null, bool reviveDead = false, CancellationToken cancellationToken = default) where TPayload : class =>
        EnqueueAsync(kind, idempotencyKey, JobPayload.Serialize(payload), maxAttempts, notBefore, reviveDead, cancellationToken);

    /// <summary>
    /// Adds a job unless one with the same kind and idempotency key exists (whatever its state); the payload of an existing job is kept.
    /// With <paramref name="reviveDead"/>, an existing dead letter is queued again with fresh attempts instead: the work was seen
    /// again (a push or catch-up of the same change), so whatever made it fail may have passed.
    /// </summary>
    public async Task<EnqueuedJob> EnqueueAsync(string kind, string idempotencyKey, string payloadJson, int? maxAttempts = null,
        DateTimeOffset? notBefore = null, bool reviveDead = false, CancellationToken cancellationToken = default)
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
            ON CONFLICT (kind, idempotency_key) DO UPDATE
                SET state = 'queued', attempts = 0, not_before = now(), finished_at = NULL, lease_owner = NULL, lease_expires_at = NULL,
                    cancel_requested_at = NULL, last_error = 'revived (the work was seen again) after: ' || coalesce(jobs.last_error, ''),
                    updated_at = now()
                WHERE @revive AND jobs.state = 'dead' AND jobs.cancel_requested_at IS NULL
            RETURNING id
            """, connection))
        {
            insert.Parameters.Add(Text("kind", kind));
            insert.Parameters.Add(Text("key", idempotencyKey));
            insert.Parameters.Add(new NpgsqlParameter<string>("payload", NpgsqlDbType.Jsonb) { TypedValue = payloadJson });
            insert.Parameters.Add(new NpgsqlParameter<int>("max_attempts", maxAttempts ?? _options.MaxAttempts));
            insert.Parameters.Add(new NpgsqlParameter("not_before", NpgsqlDbType.TimestampTz) { Value = (object?)notBefore ?? DBNull.Value });
            insert.Parameters.Add(new NpgsqlParameter<bool>("revive", reviveDead));
            if (await insert.ExecuteScalarAsync(cancellationToken) is long id)
            {
                signal.Notify();
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
    /// Due: queued or failed with not_before passed, or running with an expired lease (its claimer died), or any waiting job an
    /// admin asked to cancel. A job claimed to be cancelled, or whose last attempt's lease expired, comes back with
    /// <see cref="ClaimedJob.Ending"/> set and no attempt spent: the runner ends it (with its handler's end hook) instead of running it.
    /// </summary>
    public async Task<ClaimedJob?> ClaimAsync(string owner, IReadOnlyCollection<string>? kinds = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(owner);
        await using var command = dataSource.CreateCommand("""
            WITH next AS (
                SELECT id
                FROM jobs
                WHERE ((state IN ('queued', 'failed') AND (not_before <= now() OR cancel_requested_at IS NOT NULL))
                       OR (state = 'dead' AND cancel_requested_at IS NOT NULL)
                       OR (state = 'running' AND lease_expires_at <= now()))
                  AND (@kinds::text[] IS NULL OR kind = ANY (@kinds))
                ORDER BY cancel_requested_at IS NULL, not_before, id
                LIMIT 1
                FOR UPDATE SKIP LOCKED
            ),
            claimed AS (
                SELECT j.id,
                       CASE WHEN j.cancel_requested_at IS NOT NULL THEN 'cancelled'
                            WHEN j.state = 'running' AND j.attempts >= j.max_attempts THEN 'dead' END AS ending
                FROM jobs j JOIN next USING (id)
            )
            UPDATE jobs AS j
            SET state = 'running',
                attempts = CASE WHEN c.ending IS NULL THEN j.attempts + 1 ELSE j.attempts END,
                lease_owner = @owner,
                lease_expires_at = now() + @lease,
                started_at = CASE WHEN c.ending IS NULL THEN now() ELSE j.started_at END,
                last_error = CASE WHEN j.state = 'running' AND c.ending = 'dead'
                                  THEN format('lease of %s expired during the last attempt (%s of %s): its worker stopped or lost the database',
                                              j.lease_owner, j.attempts, j.max_attempts)
                                  WHEN j.state = 'running'
                                  THEN format('lease of %s expired during attempt %s', j.lease_owner, j.attempts)
                                  ELSE j.last_error END,
                updated_at = now()
            FROM claimed c
            WHERE j.id = c.id
            RETURNING j.id, j.kind, j.idempotency_key, j.payload::text, j.attempts, j.max_attempts, j.lease_expires_at, c.ending, j.last_error
            """);
        command.Parameters.Add(Kinds(kinds));
        command.Parameters.Add(Text("owner", owner));
        command.Parameters.Add(new NpgsqlParameter<TimeSpan>("lease", NpgsqlDbType.Interval) { TypedValue = _options.LeaseDuration });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }
        return new ClaimedJob(new JobId(reader.GetInt64(0)), reader.GetString(1), reader.GetString(2), reader.GetString(3),
            reader.GetInt32(4), reader.GetInt32(5), owner, reader.GetFieldValue<DateTimeOffset>(6),
            reader.IsDBNull(7) ? null : reader.GetString(7), reader.IsDBNull(8) ? null : reader.GetString(8));
    }

    /// <summary>Pushes the lease of a long-running job forward; throws <see cref="JobLeaseLostException"/> when it was already lost.</summary>
    public async Task<DateTimeOffset> ExtendLeaseAsync(ClaimedJob job, CancellationToken cancellationToken = default) =>
        (await HeartbeatAsync(job, extend: true, cancellationToken)).ExpiresAt;

    /// <summary>
    /// Checks that the lease is still held and whether cancelling the job was asked for; with <paramref name="extend"/>, also pushes
    /// the lease forward by the lease duration. Throws <see cref="JobLeaseLostException"/> when the lease was lost.
    /// </summary>
    public async Task<JobLease> HeartbeatAsync(ClaimedJob job, bool extend, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand(extend
            ? """
              UPDATE jobs
              SET lease_expires_at = now() + @lease, updated_at = now()
              WHERE id = @id AND state = 'running' AND lease_owner = @owner AND attempts = @attempt
              RETURNING lease_expires_at, cancel_requested_at IS NOT NULL
              """
            : """
              SELECT lease_expires_at, cancel_requested_at IS NOT NULL
              FROM jobs
              WHERE id = @id AND state = 'running' AND lease_owner = @owner AND attempts = @attempt
              """);
        AddLease(command, job);
        command.Parameters.Add(new NpgsqlParameter<TimeSpan>("lease", NpgsqlDbType.Interval) { TypedValue = _options.LeaseDuration });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken)
            ? new JobLease(reader.GetFieldValue<DateTimeOffset>(0), reader.GetBoolean(1))
            : throw LeaseLost(job);
    }

    /// <summary>
    /// Fencing: locks the job's row inside the caller's transaction and checks that this attempt still holds the lease. Until the
    /// transaction ends no one can claim the job again, so an effect published in the same transaction (a dataset swap, a model
    /// registered) is this attempt's or nobody's. Throws <see cref="JobLeaseLostException"/> when a newer attempt owns the job.
    /// </summary>
    public static async Task FenceAsync(ClaimedJob job, NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("""
            SELECT cancel_requested_at IS NOT NULL FROM jobs
            WHERE id = @id AND state = 'running' AND lease_owner = @owner AND attempts = @attempt
            FOR UPDATE
            """, connection, transaction);
        AddLease(command, job);
        switch (await command.ExecuteScalarAsync(cancellationToken))
        {
            case null:
                throw LeaseLost(job);
            case true:
                // Still ours, but an admin asked to cancel it before the heartbeat noticed: publish nothing.
                throw new JobCancelRequestedException($"Job {job.Id} ({job.Kind}) was cancelled before its work was published");
        }
    }

    /// <summary>Records success; throws <see cref="JobLeaseLostException"/> when the lease was lost.</summary>
    public async Task CompleteAsync(ClaimedJob job, CancellationToken cancellationToken = default)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await CompleteAsync(job, connection, null, cancellationToken);
    }

    /// <summary>Records success inside the caller's transaction, so it commits with the work it stands for.</summary>
    public static async Task CompleteAsync(ClaimedJob job, NpgsqlConnection connection, NpgsqlTransaction? transaction, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("""
            UPDATE jobs
            SET state = 'succeeded', lease_expires_at = NULL, finished_at = now(), updated_at = now()
            WHERE id = @id AND state = 'running' AND lease_owner = @owner AND attempts = @attempt
            """, connection, transaction);
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

    /// <summary>
    /// Gives the job back without spending the attempt (a dependency was down, or the worker is stopping): it is queued again,
    /// due after <paramref name="delay"/>, with <paramref name="reason"/> as its last error. Throws <see cref="JobLeaseLostException"/>
    /// when the lease was lost.
    /// </summary>
    public async Task HandBackAsync(ClaimedJob job, string reason, TimeSpan delay, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            UPDATE jobs
            SET state = 'queued', attempts = greatest(attempts - 1, 0), waits = waits + 1, not_before = now() + @delay,
                last_error = @reason, lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
            WHERE id = @id AND state = 'running' AND lease_owner = @owner AND attempts = @attempt
            """);
        AddLease(command, job);
        command.Parameters.Add(new NpgsqlParameter<TimeSpan>("delay", NpgsqlDbType.Interval) { TypedValue = delay });
        command.Parameters.Add(Text("reason", reason));
        if (await command.ExecuteNonQueryAsync(cancellationToken) == 0)
        {
            throw LeaseLost(job);
        }
    }

    /// <summary>Ends the job for good as <paramref name="state"/> ("cancelled" or "dead"). Throws <see cref="JobLeaseLostException"/> when the lease was lost.</summary>
    public async Task EndAsync(ClaimedJob job, string state, string? error, CancellationToken cancellationToken = default)
    {
        if (state is not ("cancelled" or "dead"))
        {
            throw new ArgumentOutOfRangeException(nameof(state), state, "a job ends as cancelled or dead here");
        }
        await using var command = dataSource.CreateCommand("""
            UPDATE jobs
            SET state = @state, last_error = coalesce(@error, last_error), lease_expires_at = NULL, finished_at = now(), updated_at = now()
            WHERE id = @id AND state = 'running' AND lease_owner = @owner AND attempts = @attempt
            """);
        AddLease(command, job);
        command.Parameters.Add(Text("state", state));
        command.Parameters.Add(new NpgsqlParameter("error", NpgsqlDbType.Text) { Value = (object?)error ?? DBNull.Value });
        if (await command.ExecuteNonQueryAsync(cancellationToken) == 0)
        {
            throw LeaseLost(job);
        }
    }

    /// <summary>
    /// Asks for a job to be cancelled: a waiting job (queued, failed, dead) is ended by the next claim, without running; a running
    /// one stops at its attempt's next heartbeat. NotFound when there is no such job, FailedPrecondition when it already ended.
    /// </summary>
    public async Task<JobRecord> RequestCancelAsync(JobId id, CancellationToken cancellationToken = default)
    {
        await using (var command = dataSource.CreateCommand("""
            UPDATE jobs SET cancel_requested_at = coalesce(cancel_requested_at, now()), updated_at = now()
            WHERE id = @id AND state IN ('queued', 'failed', 'running', 'dead')
            """))
        {
            command.Parameters.Add(new NpgsqlParameter<long>("id", id.Value));
            if (await command.ExecuteNonQueryAsync(cancellationToken) == 1)
            {
                signal.Notify();
                return await GetAsync(id, cancellationToken);
            }
        }
        var job = await GetAsync(id, cancellationToken);
        throw new FailedPreconditionException($"Job {id} already {job.State}; only a job that has not ended can be cancelled");
    }

    /// <summary>Asks to end a dead letter for good: the next claim cancels it (and its feature's record) like any cancelled job.</summary>
    public async Task<JobRecord> DiscardDeadAsync(JobId id, CancellationToken cancellationToken = default)
    {
        await using (var command = dataSource.CreateCommand("""
            UPDATE jobs SET cancel_requested_at = coalesce(cancel_requested_at, now()), updated_at = now()
            WHERE id = @id AND state = 'dead'
            """))
        {
            command.Parameters.Add(new NpgsqlParameter<long>("id", id.Value));
            if (await command.ExecuteNonQueryAsync(cancellationToken) == 1)
            {
                signal.Notify();
                return await GetAsync(id, cancellationToken);
            }
        }
        var job = await GetAsync(id, cancellationToken);
        throw new FailedPreconditionException($"Job {id} is {job.State}, not dead; only dead letters can be discarded (CancelJob ends other jobs)");
    }

    /// <summary>Puts a dead letter back on the queue with fresh attempts, due now.</summary>
    public async Task RetryDeadAsync(JobId id, CancellationToken cancellationToken = default)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using (var retry = new NpgsqlCommand("""
            UPDATE jobs
            SET state = 'queued', attempts = 0, not_before = now(), finished_at = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
            WHERE id = @id AND state = 'dead' AND cancel_requested_at IS NULL
            """, connection))
        {
            retry.Parameters.Add(new NpgsqlParameter<long>("id", id.Value));
            if (await retry.ExecuteNonQueryAsync(cancellationToken) == 1)
            {
                signal.Notify();
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

    public async Task<JobRecord> GetAsync(JobId id, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand(SelectJob + " WHERE id = @id");
        command.Parameters.Add(new NpgsqlParameter<long>("id", id.Value));
        return (await ReadJobsAsync(command, cancellationToken)) is [var found] ? found : throw new NotFoundException($"Job {id} does not exist");
    }

    /// <summary>Newest first, filtered by kind and state when given, keyset-paginated on id.</summary>
    public async Task<IReadOnlyList<JobRecord>> ListAsync(string? kind, string? state, JobId? before, int limit, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand(SelectJob + """
             WHERE (@kind::text IS NULL OR kind = @kind) AND (@state::text IS NULL OR state = @state) AND (@before::bigint IS NULL OR id < @before)
            ORDER BY id DESC
            LIMIT @limit
            """);
        command.Parameters.Add(new NpgsqlParameter("kind", NpgsqlDbType.Text) { Value = (object?)kind ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter("state", NpgsqlDbType.Text) { Value = (object?)state ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter("before", NpgsqlDbType.Bigint) { Value = (object?)before?.Value ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter<int>("limit", limit));
        return await ReadJobsAsync(command, cancellationToken);
    }

    /// <summary>
    /// Per kind, the jobs that are not finished (queued, retrying, running, dead) and since when the oldest waiting one waits: the system
    /// status's queue depth, in one statement over the jobs_kind_state index. Kinds with only finished jobs are not listed.
    /// </summary>
    public async Task<IReadOnlyList<JobKindDepth>> GetDepthsAsync(CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT kind,
                   count(*) FILTER (WHERE state = 'queued'),
                   count(*) FILTER (WHERE state = 'failed'),
                   count(*) FILTER (WHERE state = 'running'),
                   count(*) FILTER (WHERE state = 'dead'),
                   min(created_at) FILTER (WHERE state IN ('queued', 'failed'))
            FROM jobs
            WHERE state IN ('queued', 'failed', 'running', 'dead')
            GROUP BY kind
            ORDER BY kind
            """);
        var result = new List<JobKindDepth>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(new JobKindDepth(reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4), Time(reader, 5)));
        }
        return result;
    }

    private const string SelectJob = """
        SELECT id, kind, idempotency_key, payload::text, state, attempts, max_attempts, waits, lease_owner, lease_expires_at, last_error,
               not_before, cancel_requested_at, created_at, started_at, updated_at, finished_at
        FROM jobs
        """;

    private static async Task<IReadOnlyList<JobRecord>> ReadJobsAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        var result = new List<JobRecord>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(new JobRecord(new JobId(reader.GetInt64(0)), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4),
                reader.GetInt32(5), reader.GetInt32(6), reader.GetInt32(7), reader.IsDBNull(8) ? null : reader.GetString(8), Time(reader, 9),
                reader.IsDBNull(10) ? null : reader.GetString(10), reader.GetFieldValue<DateTimeOffset>(11), Time(reader, 12),
                reader.GetFieldValue<DateTimeOffset>(13), Time(reader, 14), reader.GetFieldValue<DateTimeOffset>(15), Time(reader, 16)));
        }
        return result;
    }

    private static DateTimeOffset? Time(NpgsqlDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetFieldValue<DateTimeOffset>(ordinal);

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
