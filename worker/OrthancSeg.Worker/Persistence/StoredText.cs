using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace OrthancSeg.Worker.Persistence;

/// <summary>
/// Text that came out of a file, made safe to store and to show. PostgreSQL refuses NUL in text and in jsonb (22P05:
/// a SEG whose segment label held one once dead-lettered its label), and a lone surrogate cannot be encoded at all; other
/// control characters would reach terminals and logs. They are written out as \uXXXX instead, so a person still sees that
/// the file had them, and lengths are bounded so a 64 KB "name" does not become a 64 KB row and log line.
/// </summary>
internal static class StoredText
{
    /// <summary>Names, labels, authors: far above any real one.</summary>
    public const int NameLength = 256;

    /// <summary>Reasons, which quote names and UIDs from the file.</summary>
    public const int ReasonLength = 4096;

    /// <summary>Longest identifier kept as it is; DICOM allows 64 characters in a UID.</summary>
    public const int IdentifierLength = 128;

    /// <summary>Control characters and lone surrogates escaped, and cut to <paramref name="maxLength"/> characters with how many were cut.</summary>
    public static string Clean(string text, int maxLength)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 16);
        if (text.Length <= maxLength && !NeedsEscaping(text))
        {
            return text;
        }
        var builder = new StringBuilder(Math.Min(text.Length, maxLength) + 32);
        var i = 0;
        for (; i < text.Length && builder.Length < maxLength; i++)
        {
            var c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                builder.Append(c).Append(text[++i]);
            }
            else if (char.IsControl(c) || char.IsSurrogate(c))
            {
                builder.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:X4}");
            }
            else
            {
                builder.Append(c);
            }
        }
        if (i < text.Length)
        {
            builder.Append(CultureInfo.InvariantCulture, $"… ({text.Length - i} more characters)");
        }
        return builder.ToString();
    }

    public static string? CleanOrNull(string? text, int maxLength) => text is null ? null : Clean(text, maxLength);

    /// <summary>
    /// An identifier from a file (a SOPInstanceUID) kept usable as a key: escaped like any text, and when too long, cut and
    /// followed by a hash of the whole, so two long identifiers that share a beginning stay two keys.
    /// </summary>
    public static string Identifier(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length <= IdentifierLength && !NeedsEscaping(text))
        {
            return text;
        }
        var escaped = Clean(text, int.MaxValue);
        if (escaped.Length <= IdentifierLength)
        {
            return escaped;
        }
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(escaped)))[..16];
        return $"{escaped[..(IdentifierLength - 18)]}…#{hash}";
    }

    /// <summary>
    /// UIDs a file references, reduced to those that can name something the worker recorded (printable, at most 64 characters:
    /// the UIDs of stored series and instances) and to a bounded number of them.
    /// </summary>
    public static IReadOnlyList<string> References(IEnumerable<string> uids, int maxCount = 10_000) =>
        uids.Where(u => u.Length is > 0 and <= 64 && u.All(c => c is > ' ' and < '\u007F')).Distinct(StringComparer.Ordinal).Take(maxCount).ToList();

    private static bool NeedsEscaping(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (char.IsControl(c) || char.IsSurrogate(c))
            {
                return true;
            }
        }
        return false;
    }
}
