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
                // Streamed in small blocks: reading each label map whole (52 MB for a 512×512×200 CT) made a verification
                // of a large dataset churn through gigabytes of large-object garbage and drove the worker's peak memory.
                var (labelHeader, found) = NiftiGrid.ReadWithUInt8Values(Path.Combine(labelsTr, identifier + fileEnding));
                Interlocked.Increment(ref checkedFiles);
                if (found is null)
                {
                    perCase.Add($"labelsTr/{identifier}{fileEnding} is {(NiftiDataType)labelHeader.DataType}, not uint8");
                }
                else
                {
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
                    // Integer images cannot hold NaN, so only their header is read back (the voxels are a 100 MB
                    // decompression each); floating-point images are read whole for the NaN check.
                    var header = NiftiGrid.Read(path);
                    Interlocked.Increment(ref checkedFiles);
                    if (header.IsFloatingPoint && ContainsNaN(NiftiReader.ReadFile(path)))
                    {
                        perCase.Add($"imagesTr/{name} contains NaN");
                    }
                    if (!header.Dimensions.SequenceEqual(labelHeader.Dimensions))
                    {
                        perCase.Add($"Shape mismatch between segmentation and corresponding images: imagesTr/{name} is {string.Join("×", header.Dimensions)}, "
                            + $"labelsTr/{identifier}{fileEnding} {string.Join("×", labelHeader.Dimensions)}");
                        continue;
                    }
                    if (!header.Spacing.Zip(labelHeader.Spacing).All(p => Close(p.First, p.Second)))
                    {
                        perCase.Add($"Spacing mismatch between segmentation and corresponding images for case {identifier}");
                    }
                    if (!header.Affine.Zip(labelHeader.Affine).All(p => Close(p.First, p.Second)))
                    {
                        perCase.Add($"Affine mismatch between segmentation and corresponding images for case {identifier}");
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

/// <summary>
/// The grid part of a NIfTI-1 header (dim, pixdim, sform rows, datatype), read from the first 348 bytes of a possibly
/// gzip-compressed file without decompressing the voxels.
/// </summary>
internal sealed record NiftiGrid(int[] Dimensions, double[] Spacing, double[] Affine, short DataType)
{
    public bool IsFloatingPoint => DataType is 16 or 64;

    public static NiftiGrid Read(string path)
    {
        using var input = Open(path);
        return Read(input, path, out _);
    }

    /// <summary>
    /// The grid, and for a uint8 image which of the 256 values occur in it (null for any other data type), streaming
    /// the voxels through a small buffer instead of holding the image.
    /// </summary>
    public static (NiftiGrid Grid, bool[]? Values) ReadWithUInt8Values(string path)
    {
        using var input = Open(path);
        var grid = Read(input, path, out var voxelOffset);
        if (grid.DataType != (short)NiftiDataType.UInt8)
        {
            return (grid, null);
        }
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            for (var skip = voxelOffset - 348; skip > 0;)
            {
                var read = input.Read(buffer, 0, (int)Math.Min(skip, buffer.Length));
                if (read == 0)
                {
                    throw new InvalidDataException($"{path} ends before its voxel data (vox_offset {voxelOffset})");
                }
                skip -= read;
            }
            var values = new bool[256];
            var remaining = grid.Dimensions.Aggregate(1L, (product, d) => product * Math.Max(d, 1));
            while (remaining > 0)
            {
                var read = input.Read(buffer, 0, (int)Math.Min(remaining, buffer.Length));
                if (read == 0)
                {
                    throw new InvalidDataException($"{path} ends {remaining} voxels early");
                }
                foreach (var v in buffer.AsSpan(0, read))
                {
                    values[v] = true;
                }
                remaining -= read;
            }
            return (grid, values);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static Stream Open(string path)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)
            ? new System.IO.Compression.GZipStream(file, System.IO.Compression.CompressionMode.Decompress)
            : file;
    }

    private static NiftiGrid Read(Stream input, string path, out long voxelOffset)
    {
        var header = new byte[348];
        input.ReadExactly(header);
        var bigEndian = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan()) != 348;
        short Int16(int offset) => bigEndian
            ? System.Buffers.Binary.BinaryPrimitives.ReadInt16BigEndian(header.AsSpan(offset))
            : System.Buffers.Binary.BinaryPrimitives.ReadInt16LittleEndian(header.AsSpan(offset));
        double Single(int offset) => bigEndian
            ? System.Buffers.Binary.BinaryPrimitives.ReadSingleBigEndian(header.AsSpan(offset))
            : System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(header.AsSpan(offset));
        var rank = Int16(40);
        if (rank is < 1 or > 7)
        {
            throw new InvalidDataException($"{path} is not a NIfTI-1 file (dim[0] = {rank})");
        }
        var dimensions = Enumerable.Range(1, rank).Select(i => (int)Int16(40 + (2 * i))).ToArray();
        var spacing = Enumerable.Range(1, Math.Min((int)rank, 3)).Select(i => Single(76 + (4 * i))).ToArray();
        var affine = Enumerable.Range(0, 12).Select(i => Single(280 + (4 * i))).ToArray();
        voxelOffset = Math.Max(348, (long)Single(108));
        return new NiftiGrid(dimensions, spacing, affine, Int16(70));
    }
}
