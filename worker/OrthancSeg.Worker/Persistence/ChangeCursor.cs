using Npgsql;

namespace OrthancSeg.Worker.Persistence;

/// <summary>
/// The sequence number of Orthanc's /changes log up to which every change has been fully processed.
/// It only moves forward, so a slow catch-up finishing after a faster one cannot rewind it.
/// </summary>
internal sealed class ChangeCursor(NpgsqlDataSource dataSource)
{
    /// <summary>The cursor and when it last moved forward (its creation, before the first move), for the system status.</summary>
    public async Task<(long Seq, DateTimeOffset AdvancedAt)> ReadAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("SELECT last_seq, updated_at FROM change_cursor");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken)
            ? (reader.GetInt64(0), reader.GetFieldValue<DateTimeOffset>(1))
            : throw new InvalidOperationException("change_cursor has no row; migration 0001_foundation creates it, was it edited?");
    }

    public async Task<long> GetAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("SELECT last_seq FROM change_cursor");
        return (long)(await command.ExecuteScalarAsync(cancellationToken)
            ?? throw new InvalidOperationException("change_cursor has no row; migration 0001_foundation creates it, was it edited?"));
    }

    /// <summary>Records that every change up to and including <paramref name="seq"/> is processed; returns the cursor afterwards.</summary>
    public async Task<long> AdvanceAsync(long seq, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(seq);
        await using var command = dataSource.CreateCommand("""
            UPDATE change_cursor
            SET last_seq = greatest(last_seq, @seq),
                -- updated_at says when the cursor last moved: a slower catch-up that read no further leaves it as it is.
                updated_at = CASE WHEN @seq > last_seq THEN now() ELSE updated_at END
            RETURNING last_seq
            """);
        command.Parameters.Add(new NpgsqlParameter<long>("seq", seq));
        return (long)(await command.ExecuteScalarAsync(cancellationToken)
            ?? throw new InvalidOperationException("change_cursor has no row; migration 0001_foundation creates it, was it edited?"));
    }
}
