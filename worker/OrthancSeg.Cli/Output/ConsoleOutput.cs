using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace OrthancSeg.Cli.Output;

/// <summary>
/// Where commands print: tables for people (fitted to the terminal), or JSON when --json is given; errors and progress go to
/// stderr, so stdout stays clean for tables, pipes and --json.
/// </summary>
internal sealed class ConsoleOutput
{
    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        // Details carry URLs and quotes; escaping them would make the JSON harder to read for no gain.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>
    /// The columns a table may shorten to fit the terminal, by header: free text a person reads, never an id, key, hash or path
    /// that someone copies into the next command.
    /// </summary>
    private static readonly HashSet<string> FreeTextColumns =
        ["DESCRIPTION", "DETAIL", "ERROR", "LAST ERROR", "REASON", "LATEST EPOCH", "SELECTION", "SYNONYMS"];

    private readonly TextWriter _out;
    private readonly TextWriter _error;
    private readonly int? _tableWidth;
    private readonly bool _errorIsTerminal;
    private readonly Stopwatch _elapsed = new();
    private string? _bar;
    private string? _lastProgress;

    public ConsoleOutput(ParseResult parseResult)
    {
        _out = parseResult.InvocationConfiguration.Output;
        _error = parseResult.InvocationConfiguration.Error;
        Json = parseResult.GetValue(GlobalOptions.Json);
        _tableWidth = parseResult.GetValue(GlobalOptions.Wide) ? null : TableWidth(ReferenceEquals(_out, Console.Out) && !Console.IsOutputRedirected);
        _errorIsTerminal = ReferenceEquals(_error, Console.Error) && !Console.IsErrorRedirected;
    }

    public bool Json { get; }

    public void Line(string text = "") => AroundBar(() => _out.WriteLine(text));

    public void Error(string text) => AroundBar(() => _error.WriteLine($"orthancseg: {text}"));

    public void WriteJson<T>(T value) => _out.WriteLine(JsonSerializer.Serialize(value, JsonOptions));

    /// <summary>Prints rows under a header, fitted to the terminal's width (see <see cref="TableLayout"/>).</summary>
    public void Table(IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        foreach (var line in TableLayout.Lines(header, rows, _tableWidth, c => FreeTextColumns.Contains(header[c])))
        {
            Line(line);
        }
    }

    /// <summary>
    /// How far a long watch has come (an export's cases, a training run's steps): on a terminal, one bar on stderr redrawn in
    /// place with percentage, counts and elapsed time; otherwise a plain line on stderr each time the counts or the state change.
    /// Nothing with --json, whose output is the records alone. <paramref name="total"/> 0 means no count is known yet.
    /// </summary>
    public void Progress(string what, long done, long total, string unit, string state)
    {
        if (Json)
        {
            return;
        }
        _elapsed.Start();
        if (_errorIsTerminal)
        {
            _bar = ProgressText(what, done, total, unit, state, _elapsed.Elapsed, bar: true);
            _error.Write($"\r{_bar}\u001b[K");
            return;
        }
        var text = ProgressText(what, done, total, unit, state, elapsed: null, bar: false);
        if (text != _lastProgress)
        {
            _lastProgress = text;
            _error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{text}  {Elapsed(_elapsed.Elapsed)}"));
        }
    }

    /// <summary>Ends the bar drawn by <see cref="Progress"/>, leaving its last state on screen.</summary>
    public void EndProgress()
    {
        if (_bar is not null)
        {
            _error.WriteLine();
            _bar = null;
        }
    }

    /// <summary>"snapshot 3  [###############---------------]  50%  3/6 cases  01:12  running" (the bar and time only for a terminal).</summary>
    internal static string ProgressText(string what, long done, long total, string unit, string state, TimeSpan? elapsed, bool bar)
    {
        const int width = 30;
        var parts = new List<string> { what };
        if (total > 0)
        {
            var fraction = Math.Clamp((double)done / total, 0, 1);
            var filled = (int)Math.Round(width * fraction);
            if (bar)
            {
                parts.Add($"[{new string('#', filled)}{new string('-', width - filled)}]");
            }
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"{fraction * 100,3:0}%"));
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"{done}/{total} {unit}"));
        }
        if (elapsed is { } time)
        {
            parts.Add(Elapsed(time));
        }
        parts.Add(state);
        return string.Join("  ", parts.Where(p => p.Length > 0));
    }

    private static string Elapsed(TimeSpan time) => time.TotalHours >= 1
        ? time.ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture)
        : time.ToString(@"mm\:ss", CultureInfo.InvariantCulture);

    /// <summary>Another line printed while a bar is drawn: the bar steps aside and is drawn again below it.</summary>
    private void AroundBar(Action write)
    {
        if (_bar is null)
        {
            write();
            return;
        }
        _error.Write("\r\u001b[K");
        write();
        _error.Write($"\r{_bar}\u001b[K");
    }

    /// <summary>
    /// The terminal's width when stdout is one (COLUMNS when the terminal does not say); for a pipe or a file, COLUMNS when it is
    /// set, otherwise no limit, so scripts get whole cells.
    /// </summary>
    private static int? TableWidth(bool outputIsTerminal)
    {
        int? columns = int.TryParse(Environment.GetEnvironmentVariable("COLUMNS"), NumberStyles.None, CultureInfo.InvariantCulture, out var c) && c > 0 ? c : null;
        if (!outputIsTerminal)
        {
            return columns;
        }
        try
        {
            return Console.WindowWidth > 0 ? Console.WindowWidth : columns;
        }
        catch (IOException)
        {
            return columns;
        }
    }
}
