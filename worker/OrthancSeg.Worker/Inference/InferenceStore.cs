using Npgsql;
using NpgsqlTypes;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Jobs;
using OrthancSeg.Worker.Labels;
using OrthancSeg.Worker.Persistence;

namespace OrthancSeg.Worker.Inference;

/// <summary>An inference as stored.</summary>
internal sealed record InferenceRecord(
    long Id,
    long WorkflowId,
    string Workflow,
    long CaseId,
    string CaseKey,
    long ModelId,
    string Trigger,
    long? JobId,
    string Backend,
    string State,
    string? Outcome,
    string? Error,
    int Attempts,
    string? BackendJobId,
    string? Host,
    string? GpusGiven,
    string? RunDirectory,
    int? ExitCode,
    long? LabelId,
    string? SegSopInstanceUid,
    string? SegOrthancInstanceId,
    long? WorkerMs,
    long? PredictorMs,
    DateTimeOffset CreatedAt,
    DateTimeOffset? StartedAt,
    DateTimeOffset? FinishedAt)
{
    public bool IsFinished => State is InferenceStore.Succeeded or InferenceStore.Failed or InferenceStore.Cancelled;
}

/// <summary>What a succeeded attempt publishes: a stored SEG recorded as a label, or no findings.</summary>
internal sealed record InferenceResult(WrittenLabel? Label, long WorkerMs, long PredictorMs);

/// <summary>Inferences and the workflows' inference policies in PostgreSQL.</summary>
internal sealed class InferenceStore(NpgsqlDataSource dataSource)
{
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";

    private const string SelectInference = """
        SELECT i.id, i.workflow_id, w.name, i.case_id, c.case_key, i.model_id, i.trigger, i.job_id, i.backend, i.state, i.outcome, i.error,
               i.attempts, i.backend_job_id, i.host, i.gpus_given, i.run_directory, i.exit_code, i.label_id, i.seg_sop_instance_uid,
               i.seg_orthanc_instance_id, i.worker_ms, i.predictor_ms, i.created_at, i.started_at, i.finished_at
        FROM inferences i JOIN workflows w ON w.id = i.workflow_id JOIN cases c ON c.id = i.case_id
        """;

    /// <summary>
    /// A new inference; for trigger 'auto' at most one per case and model: null when that one exists already with its job (the case was recorded
    /// again).
    /// </summary>
    public async Task<long?> CreateAsync(long workflowId, long caseId, long modelId, string trigger, string backend, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            INSERT INTO inferences (workflow_id, case_id, model_id, trigger, backend)
            VALUES (@workflow, @case, @model, @trigger, @backend)
            -- Found again: answered only while it has no job yet (the worker stopped between the two), so the caller queues it.
            ON CONFLICT (case_id, model_id) WHERE trigger = 'auto' DO UPDATE SET updated_at = inferences.updated_at WHERE inferences.job_id IS NULL
            RETURNING id
            """);
        command.Parameters.Add(new NpgsqlParameter<long>("workflow", workflowId));
        command.Parameters.Add(new NpgsqlParameter<long>("case", caseId));
        command.Parameters.Add(new NpgsqlParameter<long>("model", modelId));
        command.Parameters.Add(Text("trigger", trigger));
        command.Parameters.Add(Text("backend", backend));
        return await command.ExecuteScalarAsync(cancellationToken) as long?;
    }

    public async Task SetJobAsync(long id, JobId jobId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("UPDATE inferences SET job_id = @job, updated_at = now() WHERE id = @id");
        command.Parameters.Add(new NpgsqlParameter<long>("id", id));
        command.Parameters.Add(new NpgsqlParameter<long>("job", jobId.Value));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<InferenceRecord> GetAsync(long id, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectInference + " WHERE i.id = @id");
        command.Parameters.Add(new NpgsqlParameter<long>("id", id));
        return (await ReadAsync(command, cancellationToken)) is [var found] ? found : throw new NotFoundException($"There is no inference {id}");
    }

    /// <summary>Newest first, keyset-paginated on id.</summary>
    public async Task<IReadOnlyList<InferenceRecord>> ListAsync(string? workflow, string? caseKey, long? beforeId, int limit, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectInference + """
             WHERE (@workflow::text IS NULL OR w.name = @workflow) AND (@case::text IS NULL OR c.case_key = @case) AND (@before::bigint IS NULL OR i.id < @before)
            ORDER BY i.id DESC
            LIMIT @limit
            """);
        command.Parameters.Add(Text("workflow", workflow));
        command.Parameters.Add(Text("case", caseKey));
        command.Parameters.Add(new NpgsqlParameter("before", NpgsqlDbType.Bigint) { Value = (object?)beforeId ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter<int>("limit", limit));
        return await ReadAsync(command, cancellationToken);
    }

    /// <summary>An attempt starts: running, attempts counted. False when the inference already ended (its outcome recorded by an earlier attempt).</summary>
    public async Task<bool> StartAttemptAsync(long id, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            UPDATE inferences SET state = 'running', attempts = attempts + 1, started_at = coalesce(started_at, now()), updated_at = now()
            WHERE id = @id AND state IN ('queued', 'running')
            """);
        command.Parameters.Add(new NpgsqlParameter<long>("id", id));
        return await command.ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    /// <summary>Where this attempt's predictor runs, recorded before it starts, so the next attempt after a worker restart re-attaches to it.</summary>
    public async Task SetPlacementAsync(long id, string runDirectory, string? host, string? gpus, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            UPDATE inferences SET run_directory = @dir, host = @host, gpus_given = @gpus, backend_job_id = NULL, exit_code = NULL, updated_at = now()
            WHERE id = @id
            """);
        command.Parameters.Add(new NpgsqlParameter<long>("id", id));
        command.Parameters.Add(Text("dir", runDirectory));
        command.Parameters.Add(Text("host", host));
        command.Parameters.Add(Text("gpus", gpus));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task SetBackendJobAsync(long id, string backendJobId, string? host, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            UPDATE inferences SET backend_job_id = @backend_job, host = coalesce(@host, host), updated_at = now() WHERE id = @id
            """);
        command.Parameters.Add(new NpgsqlParameter<long>("id", id));
        command.Parameters.Add(Text("backend_job", backendJobId));
        command.Parameters.Add(Text("host", host));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task SetExitCodeAsync(long id, int? exitCode, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("UPDATE inferences SET exit_code = @exit, updated_at = now() WHERE id = @id");
        command.Parameters.Add(new NpgsqlParameter<long>("id", id));
        command.Parameters.Add(new NpgsqlParameter("exit", NpgsqlDbType.Integer) { Value = (object?)exitCode ?? DBNull.Value });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>An attempt failed and the job runs again later: queued, with the reason.</summary>
    public async Task NoteRetryAsync(long id, string error, int? exitCode, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            UPDATE inferences SET state = 'queued', error = @error, exit_code = coalesce(@exit, exit_code), run_directory = NULL, backend_job_id = NULL,
                                  updated_at = now()
            WHERE id = @id AND state IN ('queued', 'running')
            """);
        command.Parameters.Add(new NpgsqlParameter<long>("id", id));
        command.Parameters.Add(Text("error", StoredText.Clean(error, StoredText.ReasonLength)));
        command.Parameters.Add(new NpgsqlParameter("exit", NpgsqlDbType.Integer) { Value = (object?)exitCode ?? DBNull.Value });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>The job ended without success: failed (a dead letter) or cancelled.</summary>
    public async Task EndAsync(long id, bool cancelled, string error, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            UPDATE inferences SET state = @state, error = @error, finished_at = now(), updated_at = now()
            WHERE id = @id AND state IN ('queued', 'running')
            """);
        command.Parameters.Add(new NpgsqlParameter<long>("id", id));
        command.Parameters.Add(Text("state", cancelled ? Cancelled : Failed));
        command.Parameters.Add(Text("error", StoredText.Clean(error, StoredText.ReasonLength)));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// Publishes a succeeded attempt in one transaction fenced by the job's lease: the SEG's label (if any) recorded, the inference succeeded, the
    /// job completed. A stale attempt fails the fence and records nothing.
    /// </summary>
    public async Task SucceedAsync(long id, JobAttempt attempt, InferenceResult result, int? exitCode, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await attempt.FenceAsync(connection, transaction, cancellationToken);
        long? labelId = result.Label is { } label ? await LabelStore.RecordWrittenAsync(connection, transaction, label, cancellationToken) : null;
        await using (var update = new NpgsqlCommand("""
            UPDATE inferences
            SET state = 'succeeded', outcome = @outcome, error = NULL, exit_code = @exit, label_id = @label, seg_sop_instance_uid = @sop_uid,
                seg_orthanc_instance_id = @orthanc_id, worker_ms = @worker_ms, predictor_ms = @predictor_ms, finished_at = now(), updated_at = now()
            WHERE id = @id AND state = 'running'
            """, connection, transaction))
        {
            update.Parameters.Add(new NpgsqlParameter<long>("id", id));
            update.Parameters.Add(Text("outcome", result.Label is null ? "no_findings" : "seg_stored"));
            update.Parameters.Add(new NpgsqlParameter("exit", NpgsqlDbType.Integer) { Value = (object?)exitCode ?? DBNull.Value });
            update.Parameters.Add(new NpgsqlParameter("label", NpgsqlDbType.Bigint) { Value = (object?)labelId ?? DBNull.Value });
            update.Parameters.Add(Text("sop_uid", result.Label?.SopInstanceUid));
            update.Parameters.Add(Text("orthanc_id", result.Label?.OrthancInstanceId));
            update.Parameters.Add(new NpgsqlParameter<long>("worker_ms", result.WorkerMs));
            update.Parameters.Add(new NpgsqlParameter<long>("predictor_ms", result.PredictorMs));
            if (await update.ExecuteNonQueryAsync(cancellationToken) != 1)
            {
                throw new InvalidOperationException($"Inference {id} is no longer running; its result is not recorded");
            }
        }
        await attempt.CompleteAsync(connection, transaction, cancellationToken);
        await transaction.CommitAsync(CancellationToken.None);
    }

    /// <summary>The workflow's active model, or null.</summary>
    public async Task<long?> ActiveModelAsync(long workflowId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("SELECT id FROM models WHERE workflow_id = @workflow AND active");
        command.Parameters.Add(new NpgsqlParameter<long>("workflow", workflowId));
        return await command.ExecuteScalarAsync(cancellationToken) as long?;
    }

    public async Task<bool> AutoInferAsync(long workflowId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("SELECT auto_infer FROM inference_policies WHERE workflow_id = @workflow");
        command.Parameters.Add(new NpgsqlParameter<long>("workflow", workflowId));
        return await command.ExecuteScalarAsync(cancellationToken) is true;
    }

    public async Task SetAutoInferAsync(long workflowId, bool autoInfer, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            INSERT INTO inference_policies (workflow_id, auto_infer) VALUES (@workflow, @auto)
            ON CONFLICT (workflow_id) DO UPDATE SET auto_infer = excluded.auto_infer, updated_at = now()
            """);
        command.Parameters.Add(new NpgsqlParameter<long>("workflow", workflowId));
        command.Parameters.Add(new NpgsqlParameter<bool>("auto", autoInfer));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task<IReadOnlyList<InferenceRecord>> ReadAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        var result = new List<InferenceRecord>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(new InferenceRecord(
                reader.GetInt64(0), reader.GetInt64(1), reader.GetString(2), reader.GetInt64(3), reader.GetString(4), reader.GetInt64(5), reader.GetString(6),
                reader.IsDBNull(7) ? null : reader.GetInt64(7), reader.GetString(8), reader.GetString(9), Nullable(reader, 10), Nullable(reader, 11),
                reader.GetInt32(12), Nullable(reader, 13), Nullable(reader, 14), Nullable(reader, 15), Nullable(reader, 16),
                reader.IsDBNull(17) ? null : reader.GetInt32(17), reader.IsDBNull(18) ? null : reader.GetInt64(18), Nullable(reader, 19), Nullable(reader, 20),
                reader.IsDBNull(21) ? null : reader.GetInt64(21), reader.IsDBNull(22) ? null : reader.GetInt64(22),
                reader.GetFieldValue<DateTimeOffset>(23), reader.IsDBNull(24) ? null : reader.GetFieldValue<DateTimeOffset>(24),
                reader.IsDBNull(25) ? null : reader.GetFieldValue<DateTimeOffset>(25)));
        }
        return result;
    }

    private static string? Nullable(NpgsqlDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

    private static NpgsqlParameter Text(string name, string? value) => new(name, NpgsqlDbType.Text) { Value = (object?)value ?? DBNull.Value };
}
