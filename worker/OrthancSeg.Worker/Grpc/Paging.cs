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

    public static string Token(long lastId) => Convert.ToBase64String(Encoding.UTF8.GetBytes(lastId.ToString(CultureInfo.InvariantCulture)));

    /// <summary>The id a token carries; null for the first page (empty token).</summary>
    public static long? IdFromToken(string token)
    {
        if (token.Length == 0)
        {
            return null;
        }
        try
        {
            if (long.TryParse(Encoding.UTF8.GetString(Convert.FromBase64String(token)), NumberStyles.None, CultureInfo.InvariantCulture, out var id))
            {
                return id;
            }
        }
        catch (FormatException)
        {
            // Reported below, like any other token this API did not hand out.
        }
        throw new InvalidArgumentException("page_token", "is not a token this API returned");
    }
}
