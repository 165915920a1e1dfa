using Npgsql;

namespace OrthancSeg.Worker.Persistence;

internal static class NpgsqlCommandExtensions
{
    /// <summary>Runs a query that selects one text column and returns its values in the order read.</summary>
    public static async Task<List<string>> ReadStringsAsync(this NpgsqlCommand command, CancellationToken cancellationToken)
    {
        var result = new List<string>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(reader.GetString(0));
        }
        return result;
    }
}
