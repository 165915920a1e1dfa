using System.Security.Cryptography;
using System.Text;

namespace OrthancSeg.Worker.Cases;

/// <summary>
/// Case keys are nnU-Net case identifiers, so they end up in file names that leave the hospital:
/// they carry no patient data, only the workflow's prefix and 8 base32 characters of a keyed hash of
/// the SeriesInstanceUID. The same series gives the same key in the same workflow, every time.
/// </summary>
internal static class CaseKey
{
    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz234567";

    public static string For(string prefix, ReadOnlySpan<byte> salt, string seriesInstanceUid)
    {
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        ArgumentException.ThrowIfNullOrEmpty(seriesInstanceUid);
        Span<byte> hash = stackalloc byte[32];
        HMACSHA256.HashData(salt, Encoding.ASCII.GetBytes(seriesInstanceUid), hash);
        // 8 characters × 5 bits = the first 40 bits of the hash.
        ulong bits = 0;
        for (var i = 0; i < 5; i++)
        {
            bits = (bits << 8) | hash[i];
        }
        Span<char> chars = stackalloc char[8];
        for (var i = 7; i >= 0; i--)
        {
            chars[i] = Alphabet[(int)(bits & 31)];
            bits >>= 5;
        }
        return $"{prefix}_{chars}";
    }

    /// <summary>The prefix of a workflow's case keys: its name without anything nnU-Net or a file system might mind.</summary>
    public static string PrefixFor(string workflowName)
    {
        var prefix = new string(workflowName.Where(char.IsAsciiLetterOrDigit).Select(char.ToLowerInvariant).ToArray());
        return prefix.Length == 0 ? "case" : prefix;
    }
}
