using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace OrthancSeg.Cli.Output;

/// <summary>Where commands print: aligned tables for people, or JSON when --json is given; errors go to stderr.</summary>
internal sealed class ConsoleOutput(ParseResult parseResult)
{
    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        // Details carry URLs and quotes; escaping them would make the JSON harder to read for no gain.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private readonly TextWriter _out = parseResult.InvocationConfiguration.Output;
    private readonly TextWriter _error = parseResult.InvocationConfiguration.Error;

    public bool Json { get; } = parseResult.GetValue(GlobalOptions.Json);

    public void Line(string text = "") => _out.WriteLine(text);

    public void Error(string text) => _error.WriteLine($"orthancseg: {text}");

    /// <summary>Redraws one status line on stderr (a progress bar), so stdout stays clean for tables and --json.</summary>
    public void Status(string text) => _error.Write($"\r{text}\u001b[K");

    /// <summary>Ends the status line drawn by <see cref="Status"/>.</summary>
    public void EndStatus() => _error.WriteLine();

    public void WriteJson<T>(T value) => _out.WriteLine(JsonSerializer.Serialize(value, JsonOptions));

    /// <summary>Prints rows under a header, each column as wide as its widest cell; the last column is not padded.</summary>
    public void Table(IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        var all = new List<IReadOnlyList<string>> { header };
        all.AddRange(rows);
        var widths = Enumerable.Range(0, header.Count).Select(c => all.Max(r => c < r.Count ? r[c].Length : 0)).ToArray();
        foreach (var row in all)
        {
            var cells = row.Select((cell, c) => c == row.Count - 1 ? cell : cell.PadRight(widths[c]));
            _out.WriteLine(string.Join("  ", cells).TrimEnd());
        }
    }
}
