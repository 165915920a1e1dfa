using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using OrthancSeg.Worker.Cases;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Persistence;

namespace OrthancSeg.Worker.Labels;

/// <summary>A label as stored.</summary>
internal sealed record LabelRecord(
    long Id,
    string CaseKey,
    string SopInstanceUid,
    string OrthancInstanceId,
    string Source,
    string? Author,
    IReadOnlyList<SegmentMapping> Segments,
    string Verdict,
    string? RejectionReason,
    bool IsCurrent,
    IReadOnlyList<int> PaintedSlices,
    DateTimeOffset CreatedAt,
    DateTimeOffset? AcceptedAt = null);

/// <summary>A SEG the worker wrote and stored in Orthanc itself, to be recorded as a label of its case.</summary>
internal sealed record WrittenLabel(
    long CaseId, string SopInstanceUid, string OrthancInstanceId, string Source, string Verdict, string? Author,
    IReadOnlyList<SegmentMapping> Segments, IReadOnlyList<int> PaintedSlices);

/// <summary>A SEG waiting for its series to become a case.</summary>
internal sealed record PendingSegmentation(string SopInstanceUid, string OrthancInstanceId, IReadOnlyList<string> ReferencedSeriesInstanceUids, string Reason, DateTimeOffset CreatedAt);

/// <summary>
/// Labels and pending segmentations in PostgreSQL. A label is keyed on (case, SEG SOPInstanceUID), so a SEG
/// recorded twice is one label; the current label of a case is recomputed under a lock on the case row.
/// </summary>
internal sealed class LabelStore(NpgsqlDataSource dataSource)
{
    /// <summary>
    /// Records (or re-records) the verdict on a SEG for a case and recomputes the case's current label and status. Every text
    /// that may come from the file (UID, author, segment labels, the reason quoting them) is stored through <see cref="StoredText"/>.
    /// </summary>
    public async Task<bool> UpsertAsync(long caseId, string sopInstanceUid, string orthancInstanceId, string? author, DateTimeOffset? contentTime,
        LabelAssessment assessment, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await LockCaseAsync(connection, transaction, caseId, cancellationToken);
        bool created;
        await using (var upsert = new NpgsqlCommand("""
            INSERT INTO labels AS l (case_id, sop_instance_uid, orthanc_instance_id, source, author, segments, verdict, rejection_reason, painted_slices, content_time)
            VALUES (@case_id, @sop_uid, @orthanc_id, @source, @author, @segments, @verdict, @reason, @painted, @content_time)
            ON CONFLICT (case_id, sop_instance_uid) DO UPDATE
            SET orthanc_instance_id = excluded.orthanc_instance_id, source = excluded.source, author = excluded.author, segments = excluded.segments,
                verdict = excluded.verdict, rejection_reason = excluded.rejection_reason, painted_slices = excluded.painted_slices,
                content_time = excluded.content_time, is_current = l.is_current AND excluded.verdict = 'accepted', updated_at = now()
            -- A SEG the worker wrote and recorded itself (a prediction, an import) coming back from Orthanc is the same label: its source and
            -- the verdict a person may have given it stay.
            WHERE NOT l.worker_written
            RETURNING (xmax = 0)
            """, connection, transaction))
        {
            upsert.Parameters.Add(new NpgsqlParameter<long>("case_id", caseId));
            upsert.Parameters.Add(Text("sop_uid", StoredText.Identifier(sopInstanceUid)));
            upsert.Parameters.Add(Text("orthanc_id", orthancInstanceId));
            upsert.Parameters.Add(Text("source", assessment.Source));
            upsert.Parameters.Add(Text("author", StoredText.CleanOrNull(author, StoredText.NameLength)));
            upsert.Parameters.Add(SegmentsParameter(assessment.Segments));
            // A model's segmentation that fits is only proposed: it becomes training data when a person accepts it.
            upsert.Parameters.Add(Text("verdict", !assessment.Accepted ? Rejected : assessment.Source == "model" ? Proposed : Accepted));
            upsert.Parameters.Add(Text("reason", StoredText.CleanOrNull(assessment.RejectionReason, StoredText.ReasonLength)));
            upsert.Parameters.Add(new NpgsqlParameter<int[]>("painted", [.. assessment.PaintedSlices]));
            upsert.Parameters.Add(new NpgsqlParameter("content_time", NpgsqlDbType.TimestampTz) { Value = (object?)contentTime ?? DBNull.Value });
            created = await upsert.ExecuteScalarAsync(cancellationToken) is true;
        }
        await RecomputeCurrentAsync(connection, transaction, caseId, cancellationToken);
        await using (var resolved = new NpgsqlCommand("DELETE FROM pending_segmentations WHERE sop_instance_uid = @sop_uid", connection, transaction))
        {
            resolved.Parameters.Add(Text("sop_uid", StoredText.Identifier(sopInstanceUid)));
            await resolved.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
        return created;
    }

    public const string Accepted = "accepted";
    public const string Rejected = "rejected";
    public const string Proposed = "proposed";

    /// <summary>
    /// Records a SEG the worker wrote and stored itself (a model's prediction: <see cref="Proposed"/>; an import: <see cref="Accepted"/>) in the
    /// caller's transaction, so the caller can fence it with its job. Marked worker-written, so the same SEG coming back from Orthanc (bridge,
    /// catch-up) is recognised by its SOP Instance UID and not recorded as a person's label. A retried record keeps a person's verdict.
    /// </summary>
    public static async Task<long> RecordWrittenAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, WrittenLabel label,
        CancellationToken cancellationToken)
    {
        await LockCaseAsync(connection, transaction, label.CaseId, cancellationToken);
        long id;
        await using (var upsert = new NpgsqlCommand("""
            INSERT INTO labels AS l (case_id, sop_instance_uid, orthanc_instance_id, source, author, segments, verdict, painted_slices, content_time,
                                     accepted_at, worker_written)
            VALUES (@case_id, @sop_uid, @orthanc_id, @source, @author, @segments, @verdict, @painted, now(),
                    CASE WHEN @verdict = 'accepted' THEN now() END, true)
            ON CONFLICT (case_id, sop_instance_uid) DO UPDATE
            SET orthanc_instance_id = excluded.orthanc_instance_id, source = excluded.source, author = excluded.author, segments = excluded.segments,
                painted_slices = excluded.painted_slices, worker_written = true,
                verdict = CASE WHEN l.worker_written THEN l.verdict ELSE excluded.verdict END,
                rejection_reason = CASE WHEN l.worker_written THEN l.rejection_reason END,
                accepted_at = CASE WHEN l.worker_written THEN l.accepted_at ELSE excluded.accepted_at END,
                is_current = l.is_current AND l.worker_written,
                updated_at = now()
            RETURNING id
            """, connection, transaction))
        {
            upsert.Parameters.Add(new NpgsqlParameter<long>("case_id", label.CaseId));
            upsert.Parameters.Add(Text("sop_uid", label.SopInstanceUid));
            upsert.Parameters.Add(Text("orthanc_id", label.OrthancInstanceId));
            upsert.Parameters.Add(Text("source", label.Source));
            upsert.Parameters.Add(Text("author", StoredText.CleanOrNull(label.Author, StoredText.NameLength)));
            upsert.Parameters.Add(SegmentsParameter(label.Segments));
            upsert.Parameters.Add(Text("verdict", label.Verdict));
            upsert.Parameters.Add(new NpgsqlParameter<int[]>("painted", [.. label.PaintedSlices]));
            id = (long)(await upsert.ExecuteScalarAsync(cancellationToken))!;
        }
        await RecomputeCurrentAsync(connection, transaction, label.CaseId, cancellationToken);
        await using (var resolved = new NpgsqlCommand("DELETE FROM pending_segmentations WHERE sop_instance_uid = @sop_uid", connection, transaction))
        {
            resolved.Parameters.Add(Text("sop_uid", label.SopInstanceUid));
            await resolved.ExecuteNonQueryAsync(cancellationToken);
        }
        return id;
    }

    /// <summary>True when this SEG is a label of the case that the worker wrote and recorded itself (a prediction, an import).</summary>
    public async Task<bool> IsWorkerWrittenAsync(long caseId, string sopInstanceUid, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("SELECT worker_written FROM labels WHERE case_id = @case_id AND sop_instance_uid = @sop_uid");
        command.Parameters.Add(new NpgsqlParameter<long>("case_id", caseId));
        command.Parameters.Add(Text("sop_uid", StoredText.Identifier(sopInstanceUid)));
        return await command.ExecuteScalarAsync(cancellationToken) is true;
    }

    /// <summary>Records an imported label (accepted, and current as the label decided last) in a transaction of its own.</summary>
    public async Task<long> RecordImportAsync(WrittenLabel label, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var id = await RecordWrittenAsync(connection, transaction, label, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return id;
    }

    /// <summary>
    /// A person's decision on a label: accepting a proposed (model) label makes it training data and, as the newest decision, the case's current
    /// label; rejecting any label that is not already rejected takes it out, with the person's reason. A label the worker rejected (it does not
    /// fit the case) cannot be accepted: it would break the export.
    /// </summary>
    public async Task<LabelRecord> DecideAsync(long labelId, bool accept, string? reason, string? author, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        long caseId;
        string verdict;
        await using (var find = new NpgsqlCommand("SELECT case_id, verdict FROM labels WHERE id = @id", connection, transaction))
        {
            find.Parameters.Add(new NpgsqlParameter<long>("id", labelId));
            await using var reader = await find.ExecuteReaderAsync(cancellationToken);
            if (!await reader.ReadAsync(cancellationToken))
            {
                throw new NotFoundException($"There is no label {labelId}");
            }
            (caseId, verdict) = (reader.GetInt64(0), reader.GetString(1));
        }
        await LockCaseAsync(connection, transaction, caseId, cancellationToken);
        if (accept && verdict == Rejected)
        {
            throw new FailedPreconditionException($"label {labelId} is rejected and cannot be accepted; only a proposed (model) label waits for a person's accept");
        }
        if (!accept && verdict == Rejected)
        {
            throw new FailedPreconditionException($"label {labelId} is already rejected");
        }
        await using (var decide = new NpgsqlCommand("""
            UPDATE labels
            SET verdict = @verdict, rejection_reason = @reason, accepted_at = CASE WHEN @verdict = 'accepted' THEN coalesce(accepted_at, now()) END,
                author = coalesce(author, @author), is_current = is_current AND @verdict = 'accepted', updated_at = now()
            WHERE id = @id
            """, connection, transaction))
        {
            decide.Parameters.Add(new NpgsqlParameter<long>("id", labelId));
            decide.Parameters.Add(Text("verdict", accept ? Accepted : Rejected));
            decide.Parameters.Add(Text("reason", accept ? null : StoredText.Clean(reason ?? "", StoredText.ReasonLength)));
            decide.Parameters.Add(Text("author", StoredText.CleanOrNull(author, StoredText.NameLength)));
            await decide.ExecuteNonQueryAsync(cancellationToken);
        }
        await RecomputeCurrentAsync(connection, transaction, caseId, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return await GetAsync(labelId, cancellationToken);
    }

    public async Task<LabelRecord> GetAsync(long labelId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectLabel + " WHERE l.id = @id");
        command.Parameters.Add(new NpgsqlParameter<long>("id", labelId));
        return (await ReadAsync(command, cancellationToken)) is [var found] ? found : throw new NotFoundException($"There is no label {labelId}");
    }

    /// <summary>Serialises label changes per case, so two labels of one case recorded at once cannot both become current.</summary>
    private static async Task LockCaseAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long caseId, CancellationToken cancellationToken)
    {
        await using var lockCase = new NpgsqlCommand("SELECT 1 FROM cases WHERE id = @case_id FOR UPDATE", connection, transaction);
        lockCase.Parameters.Add(new NpgsqlParameter<long>("case_id", caseId));
        await lockCase.ExecuteScalarAsync(cancellationToken);
    }

    /// <summary>
    /// The case's current label is its accepted label decided last: a person's SEG by its content time, an accepted model label or an import by
    /// when it was accepted. Proposed and rejected labels never are. The case's status follows.
    /// </summary>
    private static async Task RecomputeCurrentAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long caseId, CancellationToken cancellationToken)
    {
        await using var current = new NpgsqlCommand("""
            WITH newest AS (
                SELECT id FROM labels
                WHERE case_id = @case_id AND verdict = 'accepted'
                ORDER BY coalesce(accepted_at, content_time, created_at) DESC, id DESC
                LIMIT 1
            ), cleared AS (
                UPDATE labels SET is_current = false
                WHERE case_id = @case_id AND is_current AND id NOT IN (SELECT id FROM newest)
                RETURNING id
            )
            SELECT id FROM newest
            """, connection, transaction);
        current.Parameters.Add(new NpgsqlParameter<long>("case_id", caseId));
        var newest = await current.ExecuteScalarAsync(cancellationToken);
        await using var set = new NpgsqlCommand("""
            UPDATE labels SET is_current = true WHERE id = @id AND NOT is_current;
            UPDATE cases SET status = CASE WHEN status = 'unusable' THEN status WHEN @id IS NULL THEN 'unlabeled' ELSE 'labeled' END, updated_at = now()
            WHERE id = @case_id
            """, connection, transaction);
        set.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Bigint) { Value = newest ?? DBNull.Value });
        set.Parameters.Add(new NpgsqlParameter<long>("case_id", caseId));
        await set.ExecuteNonQueryAsync(cancellationToken);
    }

    private static NpgsqlParameter SegmentsParameter(IEnumerable<SegmentMapping> segments) =>
        new("segments", NpgsqlDbType.Jsonb)
        {
            Value = JsonSerializer.Serialize(segments.Select(s => s with { SegmentLabel = StoredText.Clean(s.SegmentLabel, StoredText.NameLength) }).ToList(), SegmentsJson),
        };

    public async Task SetPendingAsync(string sopInstanceUid, string orthancInstanceId, IReadOnlyList<string> referencedSeries, string reason,
        CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            INSERT INTO pending_segmentations (sop_instance_uid, orthanc_instance_id, referenced_series_instance_uids, reason)
            VALUES (@sop_uid, @orthanc_id, @series, @reason)
            ON CONFLICT (sop_instance_uid) DO UPDATE
            SET orthanc_instance_id = excluded.orthanc_instance_id, referenced_series_instance_uids = excluded.referenced_series_instance_uids,
                reason = excluded.reason, updated_at = now()
            """);
        command.Parameters.Add(Text("sop_uid", StoredText.Identifier(sopInstanceUid)));
        command.Parameters.Add(Text("orthanc_id", orthancInstanceId));
        command.Parameters.Add(new NpgsqlParameter<string[]>("series", [.. referencedSeries.Select(StoredText.Identifier)]));
        command.Parameters.Add(Text("reason", StoredText.Clean(reason, StoredText.ReasonLength)));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>The Orthanc ids of the SEGs recorded as labels of a case, to judge them again when its series changed.</summary>
    public async Task<IReadOnlyList<string>> LabelInstancesOfCaseAsync(string caseKey, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT l.orthanc_instance_id FROM labels l JOIN cases c ON c.id = l.case_id WHERE c.case_key = @key
            """);
        command.Parameters.Add(Text("key", caseKey));
        return await command.ReadStringsAsync(cancellationToken);
    }

    /// <summary>The Orthanc ids of SEGs waiting for a case of this series.</summary>
    public async Task<IReadOnlyList<string>> PendingForSeriesAsync(string seriesInstanceUid, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT orthanc_instance_id FROM pending_segmentations WHERE referenced_series_instance_uids @> ARRAY[@series]
            """);
        command.Parameters.Add(Text("series", seriesInstanceUid));
        return await command.ReadStringsAsync(cancellationToken);
    }

    /// <summary>Pending segmentations, newest first, keyset-paginated on (created_at, sop_instance_uid): several can share a time.</summary>
    public async Task<IReadOnlyList<PendingSegmentation>> ListPendingAsync((DateTimeOffset CreatedAt, string SopInstanceUid)? before, int limit,
        CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT sop_instance_uid, orthanc_instance_id, referenced_series_instance_uids, reason, created_at
            FROM pending_segmentations
            WHERE @before IS NULL OR (created_at, sop_instance_uid) < (@before, @before_uid)
            ORDER BY created_at DESC, sop_instance_uid DESC
            LIMIT @limit
            """);
        command.Parameters.Add(new NpgsqlParameter("before", NpgsqlDbType.TimestampTz) { Value = (object?)before?.CreatedAt ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter("before_uid", NpgsqlDbType.Text) { Value = (object?)before?.SopInstanceUid ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter<int>("limit", limit));
        var result = new List<PendingSegmentation>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(new(reader.GetString(0), reader.GetString(1), reader.GetFieldValue<string[]>(2), reader.GetString(3), reader.GetFieldValue<DateTimeOffset>(4)));
        }
        return result;
    }

    private const string SelectLabel = """
        SELECT l.id, c.case_key, l.sop_instance_uid, l.orthanc_instance_id, l.source, l.author, l.segments::text, l.verdict,
               l.rejection_reason, l.is_current, l.painted_slices, l.created_at, l.accepted_at
        FROM labels l JOIN cases c ON c.id = l.case_id
        """;

    /// <summary>Labels of a case, newest first, keyset-paginated on id.</summary>
    public async Task<IReadOnlyList<LabelRecord>> ListAsync(string caseKey, long? beforeId, int limit, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectLabel + """
             WHERE c.case_key = @key AND (@before IS NULL OR l.id < @before)
            ORDER BY l.id DESC
            LIMIT @limit
            """);
        command.Parameters.Add(Text("key", caseKey));
        command.Parameters.Add(new NpgsqlParameter("before", NpgsqlDbType.Bigint) { Value = (object?)beforeId ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter<int>("limit", limit));
        return await ReadAsync(command, cancellationToken);
    }

    private static async Task<IReadOnlyList<LabelRecord>> ReadAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        var result = new List<LabelRecord>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(new LabelRecord(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4),
                reader.IsDBNull(5) ? null : reader.GetString(5),
                JsonSerializer.Deserialize<List<SegmentMapping>>(reader.GetString(6), SegmentsJson)!,
                reader.GetString(7), reader.IsDBNull(8) ? null : reader.GetString(8), reader.GetBoolean(9),
                reader.GetFieldValue<int[]>(10), reader.GetFieldValue<DateTimeOffset>(11),
                reader.IsDBNull(12) ? null : reader.GetFieldValue<DateTimeOffset>(12)));
        }
        return result;
    }

    private static readonly JsonSerializerOptions SegmentsJson = new(CaseStore.Json)
    {
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    private static NpgsqlParameter Text(string name, string? value) => new(name, NpgsqlDbType.Text) { Value = (object?)value ?? DBNull.Value };
}
