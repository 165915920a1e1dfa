namespace OrthancSeg.Cli.Output;

/// <summary>
/// Lays a table out in columns two spaces apart, each as wide as its widest cell. Given a width, the table is made to fit it by
/// shortening the widest of the columns that may be shortened (free text: descriptions, errors, reasons), one character at a time,
/// never below their header; a shortened cell ends with an ellipsis. Ids, keys and paths are never cut: when the free text alone
/// cannot make room, the lines stay longer than the width.
/// </summary>
internal static class TableLayout
{
    private const string Ellipsis = "…";

    /// <param name="header">The column titles.</param>
    /// <param name="rows">The cells, one list per row.</param>
    /// <param name="width">The width to fit, or null for no limit (--wide, or a pipe without COLUMNS).</param>
    /// <param name="shortenable">Whether the column at this index holds free text that may be cut.</param>
    public static IReadOnlyList<string> Lines(IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows, int? width, Func<int, bool> shortenable)
    {
        var all = new List<IReadOnlyList<string>> { header };
        all.AddRange(rows);
        var widths = Enumerable.Range(0, header.Count).Select(c => all.Max(r => c < r.Count ? r[c].Length : 0)).ToArray();
        if (width is { } limit)
        {
            Fit(widths, header, limit, shortenable);
        }
        return all.Select(row => string.Join("  ", row.Select((cell, c) =>
        {
            var fitted = cell.Length > widths[c] ? cell[..Math.Max(0, widths[c] - Ellipsis.Length)] + Ellipsis : cell;
            // The last column is not padded, so lines carry no trailing blanks.
            return c == row.Count - 1 ? fitted : fitted.PadRight(widths[c]);
        })).TrimEnd()).ToList();
    }

    private static void Fit(int[] widths, IReadOnlyList<string> header, int limit, Func<int, bool> shortenable)
    {
        var excess = widths.Sum() + (2 * (widths.Length - 1)) - limit;
        while (excess > 0)
        {
            var widest = -1;
            for (var c = 0; c < widths.Length; c++)
            {
                if (shortenable(c) && widths[c] > Math.Max(header[c].Length, Ellipsis.Length + 1) && (widest < 0 || widths[c] > widths[widest]))
                {
                    widest = c;
                }
            }
            if (widest < 0)
            {
                return;
            }
            widths[widest]--;
            excess--;
        }
    }
}
