using System.Globalization;
using System.Text;
using Google.Protobuf.WellKnownTypes;

namespace OrthancSeg.Cli.Commands;

/// <summary>How records look in tables and JSON.</summary>
internal static class Formatting
{
    public static string Time(Timestamp? timestamp) =>
        timestamp is null ? "" : timestamp.ToDateTimeOffset().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    public static DateTimeOffset? TimeValue(Timestamp? timestamp) => timestamp?.ToDateTimeOffset();

    public static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>A contract enum value as a word: LabelVerdict.Accepted → accepted, SegmentMatch.OhifDefaultName → ohif_default_name.</summary>
    public static string Word<T>(T value) where T : struct, System.Enum
    {
        var name = value.ToString();
        var text = new StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0)
            {
                text.Append('_');
            }
            text.Append(char.ToLowerInvariant(name[i]));
        }
        return text.ToString();
    }

    /// <summary>Every value of a contract enum as a word, without the _UNSPECIFIED one: the values shell completion offers.</summary>
    public static string[] Words<T>() where T : struct, System.Enum =>
        System.Enum.GetValues<T>().Where(v => !EqualityComparer<T>.Default.Equals(v, default)).Select(Word).ToArray();

    /// <summary>Parses a word back (accepts "labeled", "LABELED", "ohif_default_name"); null for unknown.</summary>
    public static T? Parse<T>(string word) where T : struct, System.Enum =>
        System.Enum.TryParse<T>(word.Replace("_", "", StringComparison.Ordinal), ignoreCase: true, out var value) && System.Enum.IsDefined(value) ? value : null;
}
