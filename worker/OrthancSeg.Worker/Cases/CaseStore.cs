using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Labels;
using OrthancSeg.Worker.Persistence;

namespace OrthancSeg.Worker.Cases;

/// <summary>A series as read from Orthanc, ready to become (or update) a case.</summary>
internal sealed record SeriesSnapshot(
    string OrthancSeriesId,
    string OrthancStudyId,
    string StudyInstanceUid,
    string SeriesInstanceUid,
    string? Modality,
    string? SeriesDescription,
    string? BodyPart,
    int InstanceCount,
    OrderedSeries Ordered);

/// <summary>Who took a case out of training, when and why (<see cref="CaseStore.ExcludeAsync"/>).</summary>
internal sealed record CaseExclusion(string Reason, string By, DateTimeOffset At)
{
    /// <summary>How snapshot reports and people read it.</summary>
    public override string ToString() => $"excluded by {By} at {At.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'}: {Reason}";
}

/// <summary>A case as stored.</summary>
internal sealed record CaseRecord(
    long Id,
    string CaseKey,
    long WorkflowId,
    string Workflow,
    string Status,
    string? StatusReason,
    string OrthancSeriesId,
    string OrthancStudyId,
    string StudyInstanceUid,
    string SeriesInstanceUid,
    string? FrameOfReferenceUid,
    IReadOnlyList<string> SopInstanceUids,
    string? Modality,
    string? SeriesDescription,
    string? BodyPart,
    int InstanceCount,
    GeometrySummary? Geometry,
    string? CurrentLabelSopInstanceUid,
    int LabelCount,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    CaseExclusion? Exclusion)
{
    public CaseGrid Grid => new(SopInstanceUids, FrameOfReferenceUid, Geometry, StatusReason, StudyInstanceUid, SeriesInstanceUid);
}

/// <summary>Cases in PostgreSQL. Upserts are keyed on (workflow, SeriesInstanceUID), so a series recorded twice is one case.</summary>
internal sealed class CaseStore(NpgsqlDataSource dataSource)
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    private const string SelectCase = """
        SELECT c.id, c.case_key, c.workflow_id, w.name, c.status, c.status_reason, c.orthanc_series_id, c.orthanc_study_id,
               c.study_instance_uid, c.series_instance_uid, c.frame_of_reference_uid, c.sop_instance_uids, c.modality,
               c.series_description, c.body_part, c.instance_count, c.geometry::text,
               (SELECT l.sop_instance_uid FROM labels l WHERE l.case_id = c.id AND l.is_current),
               (SELECT count(*)::int FROM labels l WHERE l.case_id = c.id),
               c.created_at, c.updated_at, c.exclusion_reason, c.excluded_by, c.excluded_at
        FROM cases c JOIN workflows w ON w.id = c.workflow_id
        """;

    /// <summary>Records the series as a case of the workflow; returns the case, whether it is new, and whether anything changed.</summary>
    public async Task<(string CaseKey, bool Created, bool Changed)> UpsertAsync(long workflowId, string caseKey, SeriesSnapshot series, CancellationToken cancellationToken)
    {
        var ordered = series.Ordered;
        await using var command = dataSource.CreateCommand("""
            INSERT INTO cases AS c (workflow_id, case_key, status, status_reason, orthanc_series_id, orthanc_study_id, study_instance_uid,
                               series_instance_uid, frame_of_reference_uid, sop_instance_uids, modality, series_description, body_part,
                               instance_count, geometry)
            VALUES (@workflow_id, @case_key, CASE WHEN @geometry IS NULL THEN 'unusable' ELSE 'unlabeled' END, @reason, @series_id, @study_id,
                    @study_uid, @series_uid, @frame_uid, @sop_uids, @modality, @description, @body_part, @instance_count, @geometry)
            ON CONFLICT (workflow_id, series_instance_uid) DO UPDATE
            SET orthanc_series_id = excluded.orthanc_series_id,
                orthanc_study_id = excluded.orthanc_study_id,
                frame_of_reference_uid = excluded.frame_of_reference_uid,
                sop_instance_uids = excluded.sop_instance_uids,
                modality = excluded.modality,
                series_description = excluded.series_description,
                body_part = excluded.body_part,
                instance_count = excluded.instance_count,
                geometry = excluded.geometry,
                status_reason = excluded.status_reason,
                status = CASE WHEN excluded.geometry IS NULL THEN 'unusable'
                              WHEN EXISTS (SELECT 1 FROM labels l WHERE l.case_id = c.id AND l.is_current) THEN 'labeled'
                              ELSE 'unlabeled' END,
                updated_at = now()
            WHERE c.sop_instance_uids IS DISTINCT FROM excluded.sop_instance_uids
               OR c.geometry IS DISTINCT FROM excluded.geometry
               OR c.orthanc_series_id IS DISTINCT FROM excluded.orthanc_series_id
            RETURNING case_key, (xmax = 0) AS created
            """);
        command.Parameters.Add(new NpgsqlParameter<long>("workflow_id", workflowId));
        command.Parameters.Add(Text("case_key", caseKey));
        // Tags come from the image files: stored through StoredText, so a NUL in a description cannot make PostgreSQL refuse the case.
        command.Parameters.Add(Text("reason", StoredText.CleanOrNull(ordered.Problem, StoredText.ReasonLength)));
        command.Parameters.Add(Text("series_id", series.OrthancSeriesId));
        command.Parameters.Add(Text("study_id", series.OrthancStudyId));
        command.Parameters.Add(Text("study_uid", StoredText.Identifier(series.StudyInstanceUid)));
        command.Parameters.Add(Text("series_uid", StoredText.Identifier(series.SeriesInstanceUid)));
        command.Parameters.Add(Text("frame_uid", ordered.FrameOfReferenceUid is { } frame ? StoredText.Identifier(frame) : null));
        command.Parameters.Add(new NpgsqlParameter<string[]>("sop_uids", [.. ordered.SopInstanceUids.Select(StoredText.Identifier)]));
        command.Parameters.Add(Text("modality", StoredText.CleanOrNull(series.Modality, StoredText.NameLength)));
        command.Parameters.Add(Text("description", StoredText.CleanOrNull(series.SeriesDescription, StoredText.NameLength)));
        command.Parameters.Add(Text("body_part", StoredText.CleanOrNull(series.BodyPart, StoredText.NameLength)));
        command.Parameters.Add(new NpgsqlParameter<int>("instance_count", series.InstanceCount));
        command.Parameters.Add(new NpgsqlParameter("geometry", NpgsqlDbType.Jsonb)
        {
            Value = ordered.Geometry is null ? DBNull.Value : JsonSerializer.Serialize(ordered.Geometry, Json),
        });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        // No row: the case exists and nothing changed (a repeated event).
        return await reader.ReadAsync(cancellationToken) ? (reader.GetString(0), reader.GetBoolean(1), true) : (caseKey, false, false);
    }

    public async Task<CaseRecord> GetAsync(string caseKey, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectCase + " WHERE c.case_key = @key");
        command.Parameters.Add(Text("key", caseKey));
        return (await ReadAsync(command, cancellationToken)) is [var found, ..] ? found : throw new NotFoundException($"There is no case '{caseKey}'");
    }

    /// <summary>Cases of any workflow whose series is one of <paramref name="seriesInstanceUids"/>, or that contain one of <paramref name="sopInstanceUids"/>.</summary>
    public async Task<IReadOnlyList<CaseRecord>> FindByReferencesAsync(IReadOnlyList<string> seriesInstanceUids, IReadOnlyList<string> sopInstanceUids,
        CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectCase + """
             WHERE c.series_instance_uid = ANY(@series) OR (cardinality(@sops) > 0 AND c.sop_instance_uids && @sops)
            ORDER BY c.id
            """);
        command.Parameters.Add(new NpgsqlParameter<string[]>("series", [.. seriesInstanceUids]));
        command.Parameters.Add(new NpgsqlParameter<string[]>("sops", [.. sopInstanceUids]));
        return await ReadAsync(command, cancellationToken);
    }

    /// <summary>Newest first, keyset-paginated on id; lists leave out the SOP Instance UIDs.</summary>
    public async Task<IReadOnlyList<CaseRecord>> ListAsync(string? workflow, string? status, bool? excluded, long? beforeId, int limit,
        CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectCase.Replace("c.sop_instance_uids,", "'{}'::text[],", StringComparison.Ordinal) + """
             WHERE (@workflow IS NULL OR w.name = @workflow) AND (@status IS NULL OR c.status = @status)
               AND (@excluded::boolean IS NULL OR (c.excluded_at IS NOT NULL) = @excluded) AND (@before IS NULL OR c.id < @before)
            ORDER BY c.id DESC
            LIMIT @limit
            """);
        command.Parameters.Add(Text("workflow", workflow));
        command.Parameters.Add(Text("status", status));
        command.Parameters.Add(new NpgsqlParameter("excluded", NpgsqlDbType.Boolean) { Value = (object?)excluded ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter("before", NpgsqlDbType.Bigint) { Value = (object?)beforeId ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter<int>("limit", limit));
        return await ReadAsync(command, cancellationToken);
    }

    /// <summary>
    /// Takes the case out of training with <paramref name="reason"/>, recorded as <paramref name="by"/>'s, now, and in the case's exclusion
    /// history. A case already excluded with the same reason is left as it is (who and when stay the first exclusion's); another reason
    /// replaces the exclusion.
    /// </summary>
    public async Task<CaseRecord> ExcludeAsync(string caseKey, string reason, string by, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            WITH changed AS (
                UPDATE cases SET excluded_at = now(), excluded_by = @by, exclusion_reason = @reason, updated_at = now()
                WHERE case_key = @key AND exclusion_reason IS DISTINCT FROM @reason
                RETURNING id
            )
            INSERT INTO case_exclusion_history (case_id, action, token_name, reason) SELECT id, 'excluded', @by, @reason FROM changed
            """);
        command.Parameters.Add(Text("key", caseKey));
        command.Parameters.Add(Text("reason", reason));
        command.Parameters.Add(Text("by", by));
        await command.ExecuteNonQueryAsync(cancellationToken);
        return await GetAsync(caseKey, cancellationToken);
    }

    /// <summary>Puts the case back into training, as <paramref name="by"/>'s change in its exclusion history; a case that is not excluded is left as it is.</summary>
    public async Task<CaseRecord> IncludeAsync(string caseKey, string by, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            WITH changed AS (
                UPDATE cases SET excluded_at = NULL, excluded_by = NULL, exclusion_reason = NULL, updated_at = now()
                WHERE case_key = @key AND excluded_at IS NOT NULL
                RETURNING id
            )
            INSERT INTO case_exclusion_history (case_id, action, token_name) SELECT id, 'included', @by FROM changed
            """);
        command.Parameters.Add(Text("key", caseKey));
        command.Parameters.Add(Text("by", by));
        await command.ExecuteNonQueryAsync(cancellationToken);
        return await GetAsync(caseKey, cancellationToken);
    }

    private static async Task<IReadOnlyList<CaseRecord>> ReadAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        var result = new List<CaseRecord>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(new CaseRecord(
                reader.GetInt64(0), reader.GetString(1), reader.GetInt64(2), reader.GetString(3), reader.GetString(4), Nullable(reader, 5),
                reader.GetString(6), reader.GetString(7), reader.GetString(8), reader.GetString(9), Nullable(reader, 10),
                reader.GetFieldValue<string[]>(11), Nullable(reader, 12), Nullable(reader, 13), Nullable(reader, 14), reader.GetInt32(15),
                reader.IsDBNull(16) ? null : JsonSerializer.Deserialize<GeometrySummary>(reader.GetString(16), Json),
                Nullable(reader, 17), reader.GetInt32(18), reader.GetFieldValue<DateTimeOffset>(19), reader.GetFieldValue<DateTimeOffset>(20),
                reader.IsDBNull(23) ? null : new CaseExclusion(reader.GetString(21), reader.GetString(22), reader.GetFieldValue<DateTimeOffset>(23))));
        }
        return result;
    }

    private static string? Nullable(NpgsqlDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

    private static NpgsqlParameter Text(string name, string? value) => new(name, NpgsqlDbType.Text) { Value = (object?)value ?? DBNull.Value };
}
