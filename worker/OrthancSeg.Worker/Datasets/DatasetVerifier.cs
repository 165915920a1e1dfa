using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using OrthancSeg.Dicom.Nifti;

namespace OrthancSeg.Worker.Datasets;

/// <summary>The outcome of checking a written dataset.</summary>
internal sealed record DatasetVerification(bool Passed, IReadOnlyList<string> Problems, int CheckedFiles);

/// <summary>
/// Checks a written nnU-Net raw dataset with the rules of nnU-Net's verify_dataset_integrity (formats.md §4.3), reading
/// every file back from disk: dataset.json has labels, channel_names, numTraining and file_ending; numTraining equals the
/// cases found in imagesTr; every case has all its channels and a label file (and no label lacks its image); labels are
/// consecutive from 0; per case no NaN, image and label of identical shape and spacing and — stricter than nnU-Net, which
/// only warns — identical affine; label values within dataset.json's labels, stored as uint8.
/// </summary>
internal static partial class DatasetVerifier
{
    private const double RelativeTolerance = 1e-5;
    private const double AbsoluteTolerance = 1e-8;
    private static readonly string[] RequiredKeys = ["labels", "channel_names", "numTraining", "file_ending"];

    public static DatasetVerification Verify(string datasetPath, int maxDegreeOfParallelism, CancellationToken cancellationToken)
    {
        var problems = new List<string>();
        var jsonPath = Path.Combine(datasetPath, "dataset.json");
        if (!File.Exists(jsonPath))
        {
            return new(false, ["dataset.json does not exist"], 0);
        }
        using var json = JsonDocument.Parse(File.ReadAllBytes(jsonPath));
        var root = json.RootElement;
        var missingKeys = RequiredKeys.Where(k => !root.TryGetProperty(k, out _)).ToList();
        if (missingKeys.Count > 0)
        {
            return new(false, [$"dataset.json lacks the required key(s) {string.Join(", ", missingKeys)}"], 0);
        }
        var fileEnding = root.GetProperty("file_ending").GetString() ?? "";
        var channels = root.GetProperty("channel_names").EnumerateObject().Count();
        var expectedLabels = root.GetProperty("labels").EnumerateObject().Select(p => p.Value.GetInt32()).Order().ToArray();
        var numTraining = root.GetProperty("numTraining").GetInt32();
        if (expectedLabels.Length == 0 || expectedLabels[0] != 0 || expectedLabels.Where((v, i) => v != i).Any())
        {
            problems.Add($"Labels must be in consecutive order (0, 1, 2, ...); dataset.json has {string.Join(", ", expectedLabels)}");
        }

        var imagesTr = Path.Combine(datasetPath, "imagesTr");
        var labelsTr = Path.Combine(datasetPath, "labelsTr");
        if (!Directory.Exists(imagesTr) || !Directory.Exists(labelsTr))
        {
            return new(false, [.. problems, "imagesTr/ or labelsTr/ does not exist"], 0);
        }
        var channelFiles = Directory.EnumerateFiles(imagesTr).Select(Path.GetFileName).OfType<string>()
            .Select(name => (Name: name, Match: ChannelFile().Match(name)))
            .ToList();
        foreach (var stray in channelFiles.Where(f => !f.Match.Success || !f.Name.EndsWith(fileEnding, StringComparison.Ordinal)))
        {
            problems.Add($"imagesTr/{stray.Name} is not named <case>_<4-digit channel>{fileEnding}");
        }
        var cases = channelFiles.Where(f => f.Match.Success && f.Name.EndsWith(fileEnding, StringComparison.Ordinal))
            .GroupBy(f => f.Name[..^(fileEnding.Length + 5)], StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        if (cases.Count != numTraining)
        {
            problems.Add($"Did not find the expected number of training cases ({numTraining}). Found {cases.Count} instead.");
        }
        foreach (var (identifier, count) in cases.Where(c => c.Value != channels))
        {
            problems.Add($"case {identifier} has {count} channel file(s) but dataset.json names {channels} channel(s)");
        }
        var labelFiles = Directory.EnumerateFiles(labelsTr).Select(Path.GetFileName).OfType<string>()
            .Where(n => n.EndsWith(fileEnding, StringComparison.Ordinal)).Select(n => n[..^fileEnding.Length]).ToHashSet(StringComparer.Ordinal);
        var missing = cases.Keys.Where(c => !labelFiles.Contains(c)).Order(StringComparer.Ordinal).ToList();
        if (missing.Count > 0)
        {
            problems.Add($"not all training cases have a label file in labelsTr. Missing: {string.Join(", ", missing)}");
        }
        foreach (var orphan in labelFiles.Where(l => !cases.ContainsKey(l)).Order(StringComparer.Ordinal))
        {
            problems.Add($"labelsTr/{orphan}{fileEnding} has no image in imagesTr");
        }

        var allowed = expectedLabels.ToHashSet();
        var checkedFiles = 0;
        var perCase = new System.Collections.Concurrent.ConcurrentBag<string>();
        Parallel.ForEach(cases.Keys.Where(labelFiles.Contains), new ParallelOptions { MaxDegreeOfParallelism = maxDegreeOfParallelism, CancellationToken = cancellationToken },
            identifier =>
            {
                var label = NiftiReader.ReadFile(Path.Combine(labelsTr, identifier + fileEnding));
                Interlocked.Increment(ref checkedFiles);
                if (label.DataType != NiftiDataType.UInt8)
                {
                    perCase.Add($"labelsTr/{identifier}{fileEnding} is {label.DataType}, not uint8");
                }
                else
                {
                    var found = new bool[256];
                    foreach (var v in label.Data)
                    {
                        found[v] = true;
                    }
                    var unexpected = Enumerable.Range(0, 256).Where(v => found[v] && !allowed.Contains(v)).ToList();
                    if (unexpected.Count > 0)
                    {
                        perCase.Add($"Unexpected labels found in file labelsTr/{identifier}{fileEnding}. Expected: [{string.Join(", ", expectedLabels)}] Found: [{string.Join(", ", Enumerable.Range(0, 256).Where(v => found[v]))}]");
                    }
                }
                for (var channel = 0; channel < channels; channel++)
                {
                    var name = string.Create(CultureInfo.InvariantCulture, $"{identifier}_{channel:D4}{fileEnding}");
                    var path = Path.Combine(imagesTr, name);
                    if (!File.Exists(path))
                    {
                        continue;
                    }
                    var image = NiftiReader.ReadFile(path);
                    Interlocked.Increment(ref checkedFiles);
                    if (ContainsNaN(image))
                    {
                        perCase.Add($"imagesTr/{name} contains NaN");
                    }
                    var (i, l) = (image.Geometry, label.Geometry);
                    if (i.Columns != l.Columns || i.Rows != l.Rows || i.Slices != l.Slices)
                    {
                        perCase.Add($"Shape mismatch between segmentation and corresponding images: imagesTr/{name} is {i.Columns}×{i.Rows}×{i.Slices}, labelsTr/{identifier}{fileEnding} {l.Columns}×{l.Rows}×{l.Slices}");
                        continue;
                    }
                    if (!Close(i.Spacing.X, l.Spacing.X) || !Close(i.Spacing.Y, l.Spacing.Y) || !Close(i.Spacing.Z, l.Spacing.Z))
                    {
                        perCase.Add($"Spacing mismatch between segmentation and corresponding images for case {identifier}");
                    }
                    var (a, b) = (image.RasAffine(), label.RasAffine());
                    for (var r = 0; r < 4; r++)
                    {
                        for (var c = 0; c < 4; c++)
                        {
                            if (!Close(a[r, c], b[r, c]))
                            {
                                perCase.Add($"Affine mismatch between segmentation and corresponding images for case {identifier} (row {r}, column {c})");
                                r = 4;
                                break;
                            }
                        }
                    }
                }
            });
        problems.AddRange(perCase.Order(StringComparer.Ordinal));
        return new(problems.Count == 0, problems, checkedFiles);
    }

    private static bool Close(double a, double b) => Math.Abs(a - b) <= AbsoluteTolerance + (RelativeTolerance * Math.Abs(b));

    private static bool ContainsNaN(NiftiImage image)
    {
        if (image.DataType == NiftiDataType.Float32)
        {
            foreach (var v in System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(image.Data))
            {
                if (float.IsNaN(v))
                {
                    return true;
                }
            }
        }
        else if (image.DataType == NiftiDataType.Float64)
        {
            foreach (var v in System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(image.Data))
            {
                if (double.IsNaN(v))
                {
                    return true;
                }
            }
        }
        return false;
    }

    [GeneratedRegex(@"^(.+)_(\d{4})\..+$", RegexOptions.CultureInvariant)]
    private static partial Regex ChannelFile();
}
