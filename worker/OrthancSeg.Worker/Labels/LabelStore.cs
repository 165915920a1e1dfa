using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using OrthancSeg.Worker.Cases;
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
    DateTimeOffset CreatedAt);

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
        // Serialises label changes per case, so two SEGs of one case recorded at once cannot both become current.
        await using (var lockCase = new NpgsqlCommand("SELECT 1 FROM cases WHERE id = @case_id FOR UPDATE", connection, transaction))
        {
            lockCase.Parameters.Add(new NpgsqlParameter<long>("case_id", caseId));
            await lockCase.ExecuteScalarAsync(cancellationToken);
        }
        bool created;
        await using (var upsert = new NpgsqlCommand("""
            INSERT INTO labels AS l (case_id, sop_instance_uid, orthanc_instance_id, source, author, segments, verdict, rejection_reason, painted_slices, content_time)
            VALUES (@case_id, @sop_uid, @orthanc_id, @source, @author, @segments, @verdict, @reason, @painted, @content_time)
            ON CONFLICT (case_id, sop_instance_uid) DO UPDATE
            SET orthanc_instance_id = excluded.orthanc_instance_id, source = excluded.source, author = excluded.author, segments = excluded.segments,
                verdict = excluded.verdict, rejection_reason = excluded.rejection_reason, painted_slices = excluded.painted_slices,
                content_time = excluded.content_time, is_current = l.is_current AND excluded.verdict = 'accepted', updated_at = now()
            RETURNING (xmax = 0)
            """, connection, transaction))
        {
            upsert.Parameters.Add(new NpgsqlParameter<long>("case_id", caseId));
            upsert.Parameters.Add(Text("sop_uid", StoredText.Identifier(sopInstanceUid)));
            upsert.Parameters.Add(Text("orthanc_id", orthancInstanceId));
            upsert.Parameters.Add(Text("source", assessment.Source));
            upsert.Parameters.Add(Text("author", StoredText.CleanOrNull(author, StoredText.NameLength)));
            var segments = assessment.Segments.Select(s => s with { SegmentLabel = StoredText.Clean(s.SegmentLabel, StoredText.NameLength) }).ToList();
            upsert.Parameters.Add(new NpgsqlParameter("segments", NpgsqlDbType.Jsonb) { Value = JsonSerializer.Serialize(segments, SegmentsJson) });
            upsert.Parameters.Add(Text("verdict", assessment.Accepted ? "accepted" : "rejected"));
            upsert.Parameters.Add(Text("reason", StoredText.CleanOrNull(assessment.RejectionReason, StoredText.ReasonLength)));
            upsert.Parameters.Add(new NpgsqlParameter<int[]>("painted", [.. assessment.PaintedSlices]));
            upsert.Parameters.Add(new NpgsqlParameter("content_time", NpgsqlDbType.TimestampTz) { Value = (object?)contentTime ?? DBNull.Value });
            created = (bool)(await upsert.ExecuteScalarAsync(cancellationToken))!;
        }
        await using (var current = new NpgsqlCommand("""
            WITH newest AS (
                SELECT id FROM labels
                WHERE case_id = @case_id AND verdict = 'accepted' AND source = 'manual'
                ORDER BY coalesce(content_time, created_at) DESC, id DESC
                LIMIT 1
            ), cleared AS (
                UPDATE labels SET is_current = false
                WHERE case_id = @case_id AND is_current AND id NOT IN (SELECT id FROM newest)
                RETURNING id
            )
            SELECT id FROM newest
            """, connection, transaction))
        {
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
        await using (var resolved = new NpgsqlCommand("DELETE FROM pending_segmentations WHERE sop_instance_uid = @sop_uid", connection, transaction))
        {
            resolved.Parameters.Add(Text("sop_uid", StoredText.Identifier(sopInstanceUid)));
            await resolved.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
        return created;
    }

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

    public async Task<IReadOnlyList<PendingSegmentation>> ListPendingAsync(DateTimeOffset? before, int limit, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT sop_instance_uid, orthanc_instance_id, referenced_series_instance_uids, reason, created_at
            FROM pending_segmentations
            WHERE @before IS NULL OR created_at < @before
            ORDER BY created_at DESC
            LIMIT @limit
            """);
        command.Parameters.Add(new NpgsqlParameter("before", NpgsqlDbType.TimestampTz) { Value = (object?)before ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter<int>("limit", limit));
        var result = new List<PendingSegmentation>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(new(reader.GetString(0), reader.GetString(1), reader.GetFieldValue<string[]>(2), reader.GetString(3), reader.GetFieldValue<DateTimeOffset>(4)));
        }
        return result;
    }

    /// <summary>Labels of a case, newest first, keyset-paginated on id.</summary>
    public async Task<IReadOnlyList<LabelRecord>> ListAsync(string caseKey, long? beforeId, int limit, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT l.id, c.case_key, l.sop_instance_uid, l.orthanc_instance_id, l.source, l.author, l.segments::text, l.verdict,
                   l.rejection_reason, l.is_current, l.painted_slices, l.created_at
            FROM labels l JOIN cases c ON c.id = l.case_id
            WHERE c.case_key = @key AND (@before IS NULL OR l.id < @before)
            ORDER BY l.id DESC
            LIMIT @limit
            """);
        command.Parameters.Add(Text("key", caseKey));
        command.Parameters.Add(new NpgsqlParameter("before", NpgsqlDbType.Bigint) { Value = (object?)beforeId ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter<int>("limit", limit));
        var result = new List<LabelRecord>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(new LabelRecord(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4),
                reader.IsDBNull(5) ? null : reader.GetString(5),
                JsonSerializer.Deserialize<List<SegmentMapping>>(reader.GetString(6), SegmentsJson)!,
                reader.GetString(7), reader.IsDBNull(8) ? null : reader.GetString(8), reader.GetBoolean(9),
                reader.GetFieldValue<int[]>(10), reader.GetFieldValue<DateTimeOffset>(11)));
        }
        return result;
    }

    private static readonly JsonSerializerOptions SegmentsJson = new(CaseStore.Json)
    {
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    private static NpgsqlParameter Text(string name, string? value) => new(name, NpgsqlDbType.Text) { Value = (object?)value ?? DBNull.Value };
}
