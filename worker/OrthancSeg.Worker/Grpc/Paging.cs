using System.Buffers.Text;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Google.Protobuf;
using OrthancSeg.Worker.Errors;

namespace OrthancSeg.Worker.Grpc;

/// <summary>
/// page_size and the page tokens of every List RPC: one scheme for all. A token is base64url of "v1.{request}.{key}": the last key of
/// the previous page (keyset pagination on a key that only grows, so rows inserted while a client pages never shift the rows it has
/// not seen yet) and a fingerprint of the request's filters, so a token passed with other filters is refused instead of silently
/// paging a different list.
/// </summary>
internal static class Paging
{
    private const string Version = "v1";

    public static int PageSize(int requested, int fallback, int max) => requested switch
    {
        < 0 => throw new InvalidArgumentException("page_size", $"{requested} is negative"),
        0 => fallback,
        _ => Math.Min(requested, max),
    };

    /// <summary>The token for the page after the one that ended with <paramref name="lastId"/>.</summary>
    public static string Token(IMessage request, long lastId) => Token(request, lastId.ToString(CultureInfo.InvariantCulture));

    /// <summary>The token for the page after the one that ended with <paramref name="lastKey"/> (an id, a name, a composite key).</summary>
    public static string Token(IMessage request, string lastKey) =>
        Base64Url.EncodeToString(Encoding.UTF8.GetBytes($"{Version}.{Fingerprint(request)}.{lastKey}"));

    /// <summary>The key the request's page_token carries; null for the first page (empty token).</summary>
    public static string? KeyFromToken(IMessage request)
    {
        var token = PageToken(request);
        if (token.Length == 0)
        {
            return null;
        }
        string text;
        try
        {
            text = Encoding.UTF8.GetString(Base64Url.DecodeFromChars(token));
        }
        catch (FormatException)
        {
            throw NotOurs();
        }
        var parts = text.Split('.', 3);
        if (parts is not [Version, var fingerprint, var key])
        {
            throw NotOurs();
        }
        return fingerprint == Fingerprint(request) ? key
            : throw new InvalidArgumentException("page_token", "was returned for a request with other filters; pass the same filters with it, or start again without a token");
    }

    /// <summary>The id the request's page_token carries; null for the first page (empty token).</summary>
    public static long? IdFromToken(IMessage request) =>
        KeyFromToken(request) is not { } key ? null
        : long.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out var id) ? id
        : throw NotOurs();

    /// <summary>The request without page_token and page_size, hashed: what the list is of.</summary>
    private static string Fingerprint(IMessage request)
    {
        var filters = request.Descriptor.Parser.ParseFrom(request.ToByteArray());
        foreach (var name in (string[])["page_token", "page_size"])
        {
            request.Descriptor.FindFieldByName(name)?.Accessor.Clear(filters);
        }
        var hash = SHA256.HashData([.. Encoding.UTF8.GetBytes(request.Descriptor.FullName), .. filters.ToByteArray()]);
        return Convert.ToHexStringLower(hash.AsSpan(0, 8));
    }

    private static string PageToken(IMessage request) =>
        request.Descriptor.FindFieldByName("page_token")?.Accessor.GetValue(request) as string
        ?? throw new InvalidOperationException($"{request.Descriptor.FullName} has no page_token");

    private static InvalidArgumentException NotOurs() => new("page_token", "is not a token this API returned");
}
