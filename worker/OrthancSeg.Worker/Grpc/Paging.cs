using System.Globalization;
using System.Text;
using OrthancSeg.Worker.Errors;

namespace OrthancSeg.Worker.Grpc;

/// <summary>page_size and opaque page tokens of the List RPCs (keyset pagination: a token is the last key of the previous page).</summary>
internal static class Paging
{
    public static int PageSize(int requested, int fallback, int max) => requested switch
    {
        < 0 => throw new InvalidArgumentException("page_size", $"{requested} is negative"),
        0 => fallback,
        _ => Math.Min(requested, max),
    };

    public static string Token(long lastId) => Token(lastId.ToString(CultureInfo.InvariantCulture));

    /// <summary>A token for a page that starts after <paramref name="lastKey"/> (an id, a name, ticks).</summary>
    public static string Token(string lastKey) => Convert.ToBase64String(Encoding.UTF8.GetBytes(lastKey));

    /// <summary>The key a token carries; null for the first page (empty token).</summary>
    public static string? KeyFromToken(string token)
    {
        if (token.Length == 0)
        {
            return null;
        }
        try
        {
            return Encoding.UTF8.GetString(Convert.FromBase64String(token));
        }
        catch (FormatException)
        {
            throw NotOurs();
        }
    }

    /// <summary>The id a token carries; null for the first page (empty token).</summary>
    public static long? IdFromToken(string token) =>
        KeyFromToken(token) is not { } key ? null
        : long.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out var id) ? id
        : throw NotOurs();

    private static InvalidArgumentException NotOurs() => new("page_token", "is not a token this API returned");
}
