using System.Globalization;
using System.Text.RegularExpressions;
using OrthancSeg.Contracts.V1;

namespace OrthancSeg.Worker.Training;

/// <summary>
/// Reads nnU-Net's training output line by line (../shared/reference/nnunet.md, "Training output") and yields an epoch once nnU-Net
/// finished it ("Epoch time: …"): its number, learning rate, losses and pseudo Dice. Lines carry nnU-Net's timestamp prefix or not;
/// pseudo Dice may print as plain numbers or, with NumPy 2, as np.float32(…). One parser follows one step's log.
/// </summary>
internal sealed partial class NnUnetEpochParser(string fold)
{
    private TrainingEpoch? _current;

    /// <summary>Feeds one line (without its line break); returns the epoch this line completed, if any.</summary>
    public TrainingEpoch? Feed(string line)
    {
        var text = Timestamp().Replace(line, "").Trim();
        if (EpochStart().Match(text) is { Success: true } start)
        {
            _current = new TrainingEpoch { Fold = fold, Epoch = int.Parse(start.Groups[1].Value, CultureInfo.InvariantCulture) };
            return null;
        }
        if (_current is null)
        {
            return null;
        }
        if (Value("Current learning rate:", text) is { } rate)
        {
            _current.LearningRate = rate;
        }
        else if (Value("train_loss", text) is { } train)
        {
            _current.TrainLoss = train;
        }
        else if (Value("val_loss", text) is { } val)
        {
            _current.ValLoss = val;
        }
        else if (text.StartsWith("Pseudo dice", StringComparison.Ordinal))
        {
            _current.PseudoDice.Clear();
            _current.PseudoDice.AddRange(Number().Matches(text).Select(m => Parse(m.Value)));
        }
        else if (EpochTime().Match(text) is { Success: true } time)
        {
            _current.EpochSeconds = Parse(time.Groups[1].Value);
            var done = _current;
            _current = null;
            return done;
        }
        return null;
    }

    /// <summary>The last epoch completed in <paramref name="lines"/>, or null.</summary>
    public static TrainingEpoch? Latest(string fold, IEnumerable<string> lines)
    {
        var parser = new NnUnetEpochParser(fold);
        TrainingEpoch? latest = null;
        foreach (var line in lines)
        {
            latest = parser.Feed(line) ?? latest;
        }
        return latest;
    }

    private static double? Value(string prefix, string text) =>
        text.StartsWith(prefix, StringComparison.Ordinal) && Number().Match(text, prefix.Length) is { Success: true } number ? Parse(number.Value) : null;

    private static double Parse(string value) =>
        value.Equals("nan", StringComparison.OrdinalIgnoreCase) ? double.NaN : double.Parse(value, NumberStyles.Float, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?: ", RegexOptions.CultureInvariant)]
    private static partial Regex Timestamp();

    [GeneratedRegex(@"^Epoch (\d+)$", RegexOptions.CultureInvariant)]
    private static partial Regex EpochStart();

    [GeneratedRegex(@"^Epoch time: ([0-9.eE+-]+) s$", RegexOptions.CultureInvariant)]
    private static partial Regex EpochTime();

    // A number not glued to a word: "0.91" in "np.float32(0.91)" but not the "32" of "float32".
    [GeneratedRegex(@"(?<![\w.])(-?\d+(\.\d*)?([eE][-+]?\d+)?|nan)", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex Number();
}
