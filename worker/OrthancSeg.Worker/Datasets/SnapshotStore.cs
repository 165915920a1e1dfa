using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using OrthancSeg.Worker.Cases;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Jobs;

namespace OrthancSeg.Worker.Datasets;

/// <summary>A snapshot row as stored.</summary>
internal sealed record SnapshotRecord(
    long Id,
    long WorkflowId,
    string Workflow,
    string State,
    string DatasetPath,
    int CasesTotal,
    int CasesDone,
    long BytesRead,
    long BytesWritten,
    int IncludedCount,
    int ExcludedCount,
    int ReusedCount,
    string? DatasetJson,
    string? DatasetJsonSha256,
    string? ReportJson,
    string? Error,
    DateTimeOffset CreatedAt,
    DateTimeOffset? StartedAt,
    DateTimeOffset? FinishedAt,
    long? DurationMs,
    DateTimeOffset UpdatedAt,
    long? JobId,
    long InstancesRead,
    long FetchMs)
{
    public bool IsFinished => State is SnapshotStore.Succeeded or SnapshotStore.Failed or SnapshotStore.Cancelled;
}

/// <summary>
/// What an export fetched from Orthanc: DICOM bytes (SEGs and transcoded copies included), instances, and the wall time during which at
/// least one fetch was in flight (parallel fetches counted once, retries' waits included).
/// </summary>
internal readonly record struct SnapshotTransfer(long BytesRead, long InstancesRead, long FetchMs)
{
    /// <summary>Megabytes (10^6 bytes) per second over the fetch time, to 0.1; 0 when nothing was fetched.</summary>
    public double MegabytesPerSecond => FetchMs <= 0 ? 0 : Math.Round(BytesRead / 1e3 / FetchMs, 1);

    /// <summary>Instances per second over the fetch time, to 0.1; 0 when nothing was fetched.</summary>
    public double InstancesPerSecond => FetchMs <= 0 ? 0 : Math.Round(InstancesRead * 1e3 / FetchMs, 1);
}

/// <summary>One case of a snapshot and the files written for it.</summary>
internal sealed record SnapshotCaseRecord(
    long CaseId,
    string CaseKey,
    long LabelId,
    string LabelSopInstanceUid,
    string SeriesFingerprint,
    string ImageFile,
    string ImageSha256,
    long ImageBytes,
    string LabelFile,
    string LabelSha256,
    long LabelBytes,
    bool Reused);

/// <summary>A case of the workflow as the export sees it: its series, its current accepted label if any, and whether a person excluded it.</summary>
internal sealed record ExportCandidate(
    long CaseId,
    string CaseKey,
    string Status,
    string? StatusReason,
    string OrthancSeriesId,
    IReadOnlyList<string> SopInstanceUids,
    string? Modality,
    long? LabelId,
    string? LabelSopInstanceUid,
    string? LabelOrthancInstanceId,
    string? LabelSegmentsJson,
    CaseExclusion? Exclusion);

/// <summary>Snapshots in PostgreSQL. A succeeded snapshot is never updated again: it is the frozen record of what was exported.</summary>
internal sealed class SnapshotStore(NpgsqlDataSource dataSource)
{
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";

    // Completed and replaced whenever this process changes a snapshot, so watchers here see it at once; other replicas' changes are polled.
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private const string SelectSnapshot = """
        SELECT s.id, s.workflow_id, w.name, s.state, s.dataset_path, s.cases_total, s.cases_done, s.bytes_read, s.bytes_written,
               s.included_count, s.excluded_count, s.reused_count, s.dataset_json::text, s.report::text, s.error,
               s.created_at, s.started_at, s.finished_at, s.duration_ms, s.updated_at, s.dataset_json_sha256, s.job_id,
               s.instances_read, s.fetch_ms
        FROM snapshots s JOIN workflows w ON w.id = s.workflow_id
        """;

    /// <summary>Creates a queued snapshot; FailedPrecondition when the workflow already has one queued or running.</summary>
    public async Task<long> CreateAsync(long workflowId, string workflowName, string datasetPath, CancellationToken cancellationToken)
    {
        await ReconcileAsync(null, workflowId, cancellationToken);
        await using var command = dataSource.CreateCommand("""
            INSERT INTO snapshots (workflow_id, dataset_path) VALUES (@workflow_id, @path) RETURNING id
            """);
        command.Parameters.Add(new NpgsqlParameter<long>("workflow_id", workflowId));
        command.Parameters.Add(Text("path", datasetPath));
        try
        {
            return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation && e.ConstraintName == "snapshots_one_active")
        {
            var active = await ActiveAsync(workflowId, cancellationToken);
            throw new FailedPreconditionException(
                $"An export of workflow {workflowName} is already {(active is null ? "in progress" : $"{active.State} as snapshot {active.Id}")}; "
                + "wait for it (orthancseg snapshots show) before starting another");
        }
    }

    /// <summary>
    /// Marks failed the active snapshots whose job can no longer finish them: the job became a dead letter without the
    /// runner recording it (its last attempt's worker was killed, so the lease expired), or it is gone. Without this such
    /// a snapshot would stay "running" and block every later export of its workflow.
    /// </summary>
    public async Task ReconcileAsync(long? snapshotId, long? workflowId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            UPDATE snapshots s
            SET state = CASE WHEN j.state = 'cancelled' THEN 'cancelled' ELSE 'failed' END,
                error = CASE WHEN j.id IS NULL THEN 'its export job is missing'
                             ELSE format('its export job is %s: %s', j.state, coalesce(j.last_error, 'no error recorded')) END,
                finished_at = now(), updated_at = now()
            FROM snapshots s2
            LEFT JOIN jobs j ON j.id = s2.job_id
            WHERE s.id = s2.id
              AND s.state IN ('queued', 'running')
              AND (@id::bigint IS NULL OR s.id = @id)
              AND (@workflow::bigint IS NULL OR s.workflow_id = @workflow)
              AND ((j.id IS NULL AND s.created_at < now() - interval '1 minute') OR j.state IN ('dead', 'succeeded', 'cancelled'))
            """);
        command.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Bigint) { Value = (object?)snapshotId ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter("workflow", NpgsqlDbType.Bigint) { Value = (object?)workflowId ?? DBNull.Value });
        if (await command.ExecuteNonQueryAsync(cancellationToken) > 0)
        {
            Changed();
        }
    }

    public async Task SetJobAsync(long snapshotId, long jobId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("UPDATE snapshots SET job_id = @job, updated_at = now() WHERE id = @id");
        command.Parameters.Add(new NpgsqlParameter<long>("id", snapshotId));
        command.Parameters.Add(new NpgsqlParameter<long>("job", jobId));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// Marks the snapshot running for a new attempt; false when it already succeeded (frozen) or does not exist. A failed
    /// snapshot runs again: its job only runs after failing for good when an admin retried its dead letter.
    /// </summary>
    public async Task<bool> StartAsync(long snapshotId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            UPDATE snapshots
            SET state = 'running', started_at = now(), attempts = attempts + 1, cases_total = 0, cases_done = 0, bytes_read = 0,
                bytes_written = 0, instances_read = 0, fetch_ms = 0, error = CASE WHEN state = 'failed' THEN NULL ELSE error END, finished_at = NULL, updated_at = now()
            WHERE id = @id AND state IN ('queued', 'running', 'failed')
            """);
        command.Parameters.Add(new NpgsqlParameter<long>("id", snapshotId));
        try
        {
            var started = await command.ExecuteNonQueryAsync(cancellationToken) == 1;
            Changed();
            return started;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation && e.ConstraintName == "snapshots_one_active")
        {
            throw new InvalidOperationException(
                $"Snapshot {snapshotId} cannot run again while another export of its workflow is queued or running; retry it once that one has ended");
        }
    }

    public async Task ProgressAsync(long snapshotId, int total, int done, SnapshotTransfer transfer, long bytesWritten, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            UPDATE snapshots
            SET cases_total = @total, cases_done = @done, bytes_read = @read, bytes_written = @written,
                instances_read = @instances, fetch_ms = @fetch_ms, updated_at = now()
            WHERE id = @id AND state = 'running'
            """);
        command.Parameters.Add(new NpgsqlParameter<long>("id", snapshotId));
        command.Parameters.Add(new NpgsqlParameter<int>("total", total));
        command.Parameters.Add(new NpgsqlParameter<int>("done", done));
        command.Parameters.Add(new NpgsqlParameter<long>("read", transfer.BytesRead));
        command.Parameters.Add(new NpgsqlParameter<long>("written", bytesWritten));
        command.Parameters.Add(new NpgsqlParameter<long>("instances", transfer.InstancesRead));
        command.Parameters.Add(new NpgsqlParameter<long>("fetch_ms", transfer.FetchMs));
        await command.ExecuteNonQueryAsync(cancellationToken);
        Changed();
    }

    /// <summary>
    /// Publishes the snapshot, fenced by its export attempt: in one transaction the job's row is locked and its lease checked, the
    /// snapshot and its cases are recorded, <paramref name="swap"/> puts the dataset in place on disk, and the job is marked succeeded.
    /// No other attempt can be claimed while the row is locked, so a stale attempt (its lease lost) swaps nothing and records nothing.
    /// Should the commit itself fail after the swap, the job runs again and swaps in an identical export. From here on it is frozen.
    /// </summary>
    public async Task SucceedAsync(long snapshotId, JobAttempt attempt, Func<bool> swap, IReadOnlyList<SnapshotCaseRecord> cases, int excluded,
        string datasetJson, string datasetJsonSha256, string reportJson, SnapshotTransfer transfer, long bytesWritten, long durationMs, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await attempt.FenceAsync(connection, transaction, cancellationToken);
        await using (var delete = new NpgsqlCommand("DELETE FROM snapshot_cases WHERE snapshot_id = @id", connection, transaction))
        {
            delete.Parameters.Add(new NpgsqlParameter<long>("id", snapshotId));
            await delete.ExecuteNonQueryAsync(cancellationToken);
        }
        await using (var importer = await connection.BeginBinaryImportAsync("""
            COPY snapshot_cases (snapshot_id, case_id, case_key, label_id, label_sop_instance_uid, series_fingerprint, image_file, image_sha256,
                                 image_bytes, label_file, label_sha256, label_bytes, reused) FROM STDIN (FORMAT BINARY)
            """, cancellationToken))
        {
            foreach (var c in cases)
            {
                await importer.StartRowAsync(cancellationToken);
                await importer.WriteAsync(snapshotId, NpgsqlDbType.Bigint, cancellationToken);
                await importer.WriteAsync(c.CaseId, NpgsqlDbType.Bigint, cancellationToken);
                await importer.WriteAsync(c.CaseKey, NpgsqlDbType.Text, cancellationToken);
                await importer.WriteAsync(c.LabelId, NpgsqlDbType.Bigint, cancellationToken);
                await importer.WriteAsync(c.LabelSopInstanceUid, NpgsqlDbType.Text, cancellationToken);
                await importer.WriteAsync(c.SeriesFingerprint, NpgsqlDbType.Text, cancellationToken);
                await importer.WriteAsync(c.ImageFile, NpgsqlDbType.Text, cancellationToken);
                await importer.WriteAsync(c.ImageSha256, NpgsqlDbType.Text, cancellationToken);
                await importer.WriteAsync(c.ImageBytes, NpgsqlDbType.Bigint, cancellationToken);
                await importer.WriteAsync(c.LabelFile, NpgsqlDbType.Text, cancellationToken);
                await importer.WriteAsync(c.LabelSha256, NpgsqlDbType.Text, cancellationToken);
                await importer.WriteAsync(c.LabelBytes, NpgsqlDbType.Bigint, cancellationToken);
                await importer.WriteAsync(c.Reused, NpgsqlDbType.Boolean, cancellationToken);
            }
            await importer.CompleteAsync(cancellationToken);
        }
        await using (var update = new NpgsqlCommand("""
            UPDATE snapshots
            SET state = 'succeeded', included_count = @included, excluded_count = @excluded, reused_count = @reused,
                cases_done = cases_total, bytes_read = @read, bytes_written = @written, instances_read = @instances, fetch_ms = @fetch_ms,
                dataset_json = @dataset_json,
                dataset_json_sha256 = @dataset_sha, report = @report, error = NULL, finished_at = now(), duration_ms = @duration, updated_at = now()
            WHERE id = @id AND state = 'running'
            """, connection, transaction))
        {
            update.Parameters.Add(new NpgsqlParameter<long>("id", snapshotId));
            update.Parameters.Add(new NpgsqlParameter<int>("included", cases.Count));
            update.Parameters.Add(new NpgsqlParameter<int>("excluded", excluded));
            update.Parameters.Add(new NpgsqlParameter<int>("reused", cases.Count(c => c.Reused)));
            update.Parameters.Add(new NpgsqlParameter<long>("read", transfer.BytesRead));
            update.Parameters.Add(new NpgsqlParameter<long>("written", bytesWritten));
            update.Parameters.Add(new NpgsqlParameter<long>("instances", transfer.InstancesRead));
            update.Parameters.Add(new NpgsqlParameter<long>("fetch_ms", transfer.FetchMs));
            update.Parameters.Add(new NpgsqlParameter<string>("dataset_json", NpgsqlDbType.Json) { TypedValue = datasetJson });
            update.Parameters.Add(Text("dataset_sha", datasetJsonSha256));
            update.Parameters.Add(new NpgsqlParameter<string>("report", NpgsqlDbType.Jsonb) { TypedValue = reportJson });
            update.Parameters.Add(new NpgsqlParameter<long>("duration", durationMs));
            if (await update.ExecuteNonQueryAsync(cancellationToken) != 1)
            {
                throw new InvalidOperationException($"Snapshot {snapshotId} is no longer running; its result is not recorded");
            }
        }
        swap();
        await attempt.CompleteAsync(connection, transaction, cancellationToken);
        // Past the swap, a cancelled token must not undo the record of what is now on disk.
        await transaction.CommitAsync(CancellationToken.None);
        Changed();
    }

    /// <summary>Marks a snapshot that has not ended cancelled; its dataset folder keeps the previous snapshot.</summary>
    public async Task CancelAsync(long snapshotId, string reason, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            UPDATE snapshots SET state = 'cancelled', error = @reason, finished_at = now(), updated_at = now()
            WHERE id = @id AND state IN ('queued', 'running')
            """);
        command.Parameters.Add(new NpgsqlParameter<long>("id", snapshotId));
        command.Parameters.Add(Text("reason", reason));
        await command.ExecuteNonQueryAsync(cancellationToken);
        Changed();
    }

    /// <summary>Records why an attempt failed: <paramref name="final"/> marks the snapshot failed, otherwise it waits for the retry.</summary>
    public async Task FailAsync(long snapshotId, string error, string? reportJson, bool final, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            UPDATE snapshots
            SET state = CASE WHEN @final THEN 'failed' ELSE 'queued' END, error = @error, report = coalesce(@report, report),
                finished_at = CASE WHEN @final THEN now() END, updated_at = now()
            WHERE id = @id AND state IN ('queued', 'running')
            """);
        command.Parameters.Add(new NpgsqlParameter<long>("id", snapshotId));
        command.Parameters.Add(Text("error", error));
        command.Parameters.Add(new NpgsqlParameter("report", NpgsqlDbType.Jsonb) { Value = (object?)reportJson ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter<bool>("final", final));
        await command.ExecuteNonQueryAsync(cancellationToken);
        Changed();
    }

    /// <summary>Returns when this process changes any snapshot, or after <paramref name="timeout"/>, whichever comes first.</summary>
    public async Task WaitForChangeAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            await Volatile.Read(ref _changed).Task.WaitAsync(timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            // Nothing changed here; the caller polls the database anyway.
        }
    }

    private void Changed() => Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    public async Task<SnapshotRecord> GetAsync(long snapshotId, CancellationToken cancellationToken) =>
        await FindAsync(snapshotId, cancellationToken) ?? throw new NotFoundException($"There is no snapshot {snapshotId}");

    public async Task<SnapshotRecord?> FindAsync(long snapshotId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectSnapshot + " WHERE s.id = @id");
        command.Parameters.Add(new NpgsqlParameter<long>("id", snapshotId));
        return (await ReadAsync(command, cancellationToken)) is [var found, ..] ? found : null;
    }

    /// <summary>Newest first, keyset-paginated on id.</summary>
    public async Task<IReadOnlyList<SnapshotRecord>> ListAsync(string? workflow, long? beforeId, int limit, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectSnapshot + """
             WHERE (@workflow::text IS NULL OR w.name = @workflow) AND (@before::bigint IS NULL OR s.id < @before)
            ORDER BY s.id DESC
            LIMIT @limit
            """);
        command.Parameters.Add(Text("workflow", workflow));
        command.Parameters.Add(new NpgsqlParameter("before", NpgsqlDbType.Bigint) { Value = (object?)beforeId ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter<int>("limit", limit));
        return await ReadAsync(command, cancellationToken);
    }

    public async Task<IReadOnlyList<SnapshotCaseRecord>> CasesAsync(long snapshotId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT case_id, case_key, label_id, label_sop_instance_uid, series_fingerprint, image_file, image_sha256, image_bytes,
                   label_file, label_sha256, label_bytes, reused
            FROM snapshot_cases WHERE snapshot_id = @id ORDER BY case_key
            """);
        command.Parameters.Add(new NpgsqlParameter<long>("id", snapshotId));
        var result = new List<SnapshotCaseRecord>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(new SnapshotCaseRecord(reader.GetInt64(0), reader.GetString(1), reader.GetInt64(2), reader.GetString(3), reader.GetString(4),
                reader.GetString(5), reader.GetString(6), reader.GetInt64(7), reader.GetString(8), reader.GetString(9), reader.GetInt64(10), reader.GetBoolean(11)));
        }
        return result;
    }

    /// <summary>The newest succeeded snapshot of the workflow before <paramref name="snapshotId"/>: what a new export may reuse.</summary>
    public async Task<SnapshotRecord?> PreviousSucceededAsync(long workflowId, long snapshotId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectSnapshot + """
             WHERE s.workflow_id = @workflow AND s.id < @id AND s.state = 'succeeded'
            ORDER BY s.id DESC
            LIMIT 1
            """);
        command.Parameters.Add(new NpgsqlParameter<long>("workflow", workflowId));
        command.Parameters.Add(new NpgsqlParameter<long>("id", snapshotId));
        return (await ReadAsync(command, cancellationToken)) is [var found, ..] ? found : null;
    }

    /// <summary>Every case of the workflow, with its current accepted label when it has one.</summary>
    public async Task<IReadOnlyList<ExportCandidate>> CandidatesAsync(long workflowId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT c.id, c.case_key, c.status, c.status_reason, c.orthanc_series_id, c.sop_instance_uids, c.modality,
                   l.id, l.sop_instance_uid, l.orthanc_instance_id, l.segments::text, c.exclusion_reason, c.excluded_by, c.excluded_at
            FROM cases c
            LEFT JOIN labels l ON l.case_id = c.id AND l.is_current AND l.verdict = 'accepted'
            WHERE c.workflow_id = @workflow
            ORDER BY c.case_key
            """);
        command.Parameters.Add(new NpgsqlParameter<long>("workflow", workflowId));
        var result = new List<ExportCandidate>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(new ExportCandidate(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), NullableText(reader, 3), reader.GetString(4),
                reader.GetFieldValue<string[]>(5), NullableText(reader, 6),
                reader.IsDBNull(7) ? null : reader.GetInt64(7), NullableText(reader, 8), NullableText(reader, 9), NullableText(reader, 10),
                reader.IsDBNull(13) ? null : new CaseExclusion(reader.GetString(11), reader.GetString(12), reader.GetFieldValue<DateTimeOffset>(13))));
        }
        return result;
    }

    private async Task<SnapshotRecord?> ActiveAsync(long workflowId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectSnapshot + " WHERE s.workflow_id = @workflow AND s.state IN ('queued', 'running')");
        command.Parameters.Add(new NpgsqlParameter<long>("workflow", workflowId));
        return (await ReadAsync(command, cancellationToken)) is [var found, ..] ? found : null;
    }

    private static async Task<IReadOnlyList<SnapshotRecord>> ReadAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        var result = new List<SnapshotRecord>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(new SnapshotRecord(reader.GetInt64(0), reader.GetInt64(1), reader.GetString(2), reader.GetString(3), reader.GetString(4),
                reader.GetInt32(5), reader.GetInt32(6), reader.GetInt64(7), reader.GetInt64(8), reader.GetInt32(9), reader.GetInt32(10), reader.GetInt32(11),
                NullableText(reader, 12), NullableText(reader, 20), NullableText(reader, 13), NullableText(reader, 14), reader.GetFieldValue<DateTimeOffset>(15),
                reader.IsDBNull(16) ? null : reader.GetFieldValue<DateTimeOffset>(16), reader.IsDBNull(17) ? null : reader.GetFieldValue<DateTimeOffset>(17),
                reader.IsDBNull(18) ? null : reader.GetInt64(18), reader.GetFieldValue<DateTimeOffset>(19), reader.IsDBNull(21) ? null : reader.GetInt64(21),
                reader.GetInt64(22), reader.GetInt64(23)));
        }
        return result;
    }

    private static string? NullableText(NpgsqlDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

    private static NpgsqlParameter Text(string name, string? value) => new(name, NpgsqlDbType.Text) { Value = (object?)value ?? DBNull.Value };
}
