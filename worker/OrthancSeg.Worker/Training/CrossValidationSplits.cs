using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace OrthancSeg.Worker.Training;

/// <summary>One fold of nnU-Net's splits_final.json: the cases it trains on and the ones it validates on.</summary>
internal sealed record CrossValidationFold(
    [property: JsonPropertyName("train")] IReadOnlyList<string> Train,
    [property: JsonPropertyName("val")] IReadOnlyList<string> Val);

/// <summary>
/// nnU-Net's splits_final.json, written by the worker before training instead of by nnU-Net, so the folds are
/// reproducible and stable: a case that was in validation fold k of the previous snapshot stays in fold k; new
/// cases go, in an order fixed by the seed, to whichever fold is smallest. The file is what nnU-Net writes itself: a
/// JSON list of 5 {"train": [...], "val": [...]}, each case in exactly one "val".
/// </summary>
internal static class CrossValidationSplits
{
    public const int FoldCount = 5;

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>
    /// The folds of <paramref name="cases"/>. <paramref name="previousFolds"/> maps case key → validation fold of
    /// the previous snapshot (<see cref="ValidationFolds"/> of its splits); <paramref name="seed"/> orders the new
    /// cases (the workflow's, so every snapshot of it agrees).
    /// </summary>
    public static IReadOnlyList<CrossValidationFold> Build(IReadOnlyCollection<string> cases, string seed,
        IReadOnlyDictionary<string, int>? previousFolds = null)
    {
        if (cases.Distinct(StringComparer.Ordinal).Count() != cases.Count)
        {
            throw new ArgumentException("case keys must be unique", nameof(cases));
        }
        if (cases.Count < FoldCount)
        {
            throw new ArgumentException($"{FoldCount}-fold cross-validation needs at least {FoldCount} cases, not {cases.Count}; train fold 'all' instead",
                nameof(cases));
        }
        var folds = Enumerable.Range(0, FoldCount).Select(_ => new List<string>()).ToArray();
        var fresh = new List<string>();
        foreach (var key in cases)
        {
            if (previousFolds is not null && previousFolds.TryGetValue(key, out var fold) && fold is >= 0 and < FoldCount)
            {
                folds[fold].Add(key);
            }
            else
            {
                fresh.Add(key);
            }
        }
        foreach (var key in fresh.OrderBy(k => Rank(seed, k)).ThenBy(k => k, StringComparer.Ordinal))
        {
            // Smallest fold first; ties to the lowest index, so the result depends on nothing but the inputs.
            folds.MinBy(f => f.Count)!.Add(key);
        }
        var all = cases.Order(StringComparer.Ordinal).ToList();
        return [.. folds.Select(val =>
        {
            var validation = val.Order(StringComparer.Ordinal).ToList();
            var set = validation.ToHashSet(StringComparer.Ordinal);
            return new CrossValidationFold([.. all.Where(k => !set.Contains(k))], validation);
        })];
    }

    /// <summary>case key → the fold it validates in.</summary>
    public static IReadOnlyDictionary<string, int> ValidationFolds(IReadOnlyList<CrossValidationFold> splits)
    {
        var folds = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < splits.Count; i++)
        {
            foreach (var key in splits[i].Val)
            {
                folds[key] = i;
            }
        }
        return folds;
    }

    public static string ToJson(IReadOnlyList<CrossValidationFold> splits) => JsonSerializer.Serialize(splits, Json);

    /// <summary>Reads a splits_final.json (nnU-Net's or ours); a malformed one is an error.</summary>
    public static IReadOnlyList<CrossValidationFold> Read(string path) =>
        JsonSerializer.Deserialize<List<CrossValidationFold>>(File.ReadAllText(path), Json) is { } splits
        && splits.All(s => s.Train is not null && s.Val is not null)
            ? splits
            : throw new InvalidDataException($"{path} is not a list of {{\"train\": [...], \"val\": [...]}}");

    /// <summary>Writes splits_final.json atomically (aside, then renamed), creating its folder.</summary>
    public static void Write(string path, IReadOnlyList<CrossValidationFold> splits)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = path + ".tmp";
        File.WriteAllText(temporary, ToJson(splits));
        File.Move(temporary, path, overwrite: true);
    }

    private static ulong Rank(string seed, string key) =>
        BinaryPrimitives.ReadUInt64BigEndian(SHA256.HashData(Encoding.UTF8.GetBytes(seed + "\n" + key)));
}
