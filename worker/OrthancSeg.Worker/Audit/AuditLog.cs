using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Npgsql;
using NpgsqlTypes;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Worker.Auth;

namespace OrthancSeg.Worker.Audit;

/// <summary>What to list: every filter is optional.</summary>
internal sealed record AuditQuery(string? TokenName, string? Role, string? Method, string? StatusCode, DateTimeOffset? From, DateTimeOffset? Until,
    long? BeforeId, int Limit);

/// <summary>The audit_log table (migration 0009): written around every call that changes something, read by AuditService.</summary>
internal sealed class AuditLog(NpgsqlDataSource dataSource)
{
    /// <summary>Records that a call starts; its id is given to <see cref="EndAsync"/> when the call ends.</summary>
    public async Task<long> BeginAsync(Caller caller, string method, string resource, string peer, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            INSERT INTO audit_log (token_name, role, method, resource, peer) VALUES (@token_name, @role, @method, @resource, @peer)
            RETURNING id
            """);
        AddCall(command, caller, method, resource, peer);
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>Records how a call begun with <see cref="BeginAsync"/> ended.</summary>
    public async Task EndAsync(long id, StatusCode code, string? message, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            UPDATE audit_log SET status_code = @status_code, status_message = @status_message, end_time = now() WHERE id = @id
            """);
        command.Parameters.Add(new NpgsqlParameter<long>("id", id));
        AddOutcome(command, code, message);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Records a call that was refused before it ran (its token's role is not enough), in one row.</summary>
    public async Task RefusedAsync(Caller caller, string method, string resource, string peer, StatusCode code, string message,
        CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            INSERT INTO audit_log (token_name, role, method, resource, peer, status_code, status_message, end_time)
            VALUES (@token_name, @role, @method, @resource, @peer, @status_code, @status_message, now())
            """);
        AddCall(command, caller, method, resource, peer);
        AddOutcome(command, code, message);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Entries newest first, by keyset on id.</summary>
    public async Task<IReadOnlyList<AuditEntry>> ListAsync(AuditQuery query, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT id, time, token_name, role, method, resource, peer, status_code, status_message, end_time
            FROM audit_log
            WHERE (@token_name::text IS NULL OR token_name = @token_name)
              AND (@role::text IS NULL OR role = @role)
              AND (@method::text IS NULL OR method = @method OR method LIKE '%/' || @method)
              AND (@status_code::text IS NULL OR status_code = @status_code)
              AND (@from::timestamptz IS NULL OR time >= @from)
              AND (@until::timestamptz IS NULL OR time < @until)
              AND (@before::bigint IS NULL OR id < @before)
            ORDER BY id DESC
            LIMIT @limit
            """);
        command.Parameters.Add(Text("token_name", query.TokenName));
        command.Parameters.Add(Text("role", query.Role));
        command.Parameters.Add(Text("method", query.Method));
        command.Parameters.Add(Text("status_code", query.StatusCode));
        command.Parameters.Add(new NpgsqlParameter("from", NpgsqlDbType.TimestampTz) { Value = (object?)query.From ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter("until", NpgsqlDbType.TimestampTz) { Value = (object?)query.Until ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter("before", NpgsqlDbType.Bigint) { Value = (object?)query.BeforeId ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter<int>("limit", query.Limit));
        var entries = new List<AuditEntry>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var entry = new AuditEntry
            {
                Id = reader.GetInt64(0),
                Time = Timestamp.FromDateTimeOffset(reader.GetFieldValue<DateTimeOffset>(1)),
                TokenName = reader.GetString(2),
                Role = Roles.Parse(reader.GetString(3)) ?? Role.Unspecified,
                Method = reader.GetString(4),
                Resource = reader.GetString(5),
                Peer = reader.GetString(6),
                StatusCode = reader.IsDBNull(7) ? "" : reader.GetString(7),
                StatusMessage = reader.IsDBNull(8) ? "" : reader.GetString(8),
            };
            if (!reader.IsDBNull(9))
            {
                entry.EndTime = Timestamp.FromDateTimeOffset(reader.GetFieldValue<DateTimeOffset>(9));
            }
            entries.Add(entry);
        }
        return entries;
    }

    /// <summary>The name a status code is listed and filtered by: the one gRPC's specification uses ("NOT_FOUND").</summary>
    public static string CodeName(StatusCode code) => code switch
    {
        StatusCode.OK => "OK",
        StatusCode.InvalidArgument => "INVALID_ARGUMENT",
        StatusCode.DeadlineExceeded => "DEADLINE_EXCEEDED",
        StatusCode.NotFound => "NOT_FOUND",
        StatusCode.AlreadyExists => "ALREADY_EXISTS",
        StatusCode.PermissionDenied => "PERMISSION_DENIED",
        StatusCode.ResourceExhausted => "RESOURCE_EXHAUSTED",
        StatusCode.FailedPrecondition => "FAILED_PRECONDITION",
        StatusCode.OutOfRange => "OUT_OF_RANGE",
        StatusCode.DataLoss => "DATA_LOSS",
        _ => code.ToString().ToUpperInvariant(),
    };

    private static void AddCall(NpgsqlCommand command, Caller caller, string method, string resource, string peer)
    {
        command.Parameters.Add(new NpgsqlParameter<string>("token_name", caller.TokenName));
        command.Parameters.Add(new NpgsqlParameter<string>("role", Roles.Name(caller.Role)));
        command.Parameters.Add(new NpgsqlParameter<string>("method", method));
        command.Parameters.Add(new NpgsqlParameter<string>("resource", resource));
        command.Parameters.Add(new NpgsqlParameter<string>("peer", peer));
    }

    private static void AddOutcome(NpgsqlCommand command, StatusCode code, string? message)
    {
        command.Parameters.Add(new NpgsqlParameter<string>("status_code", CodeName(code)));
        command.Parameters.Add(Text("status_message", code == StatusCode.OK || string.IsNullOrEmpty(message) ? null : message));
    }

    private static NpgsqlParameter Text(string name, string? value) => new(name, NpgsqlDbType.Text) { Value = (object?)value ?? DBNull.Value };
}
