using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using OrthancSeg.Dicom;
using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Benchmarks;

/// <summary>
/// The imaging hot paths of a case, on a synthetic 512×512×200 CT series held as Part 10 bytes in memory:
/// series → volume (parse every file, sort, decode, rescale); label map → BINARY SEG (3 labels over 200 frames:
/// SegmentationWriter.Write and the Part 10 bytes that are uploaded), target under 300 ms, against a reference that
/// packs the same frames with numpy and writes the same data set with pydicom (highdicom's way); and SEG → label map
/// for that SEG (parse, place frames, unpack bits, paint), target under 150 ms.
/// Reports the median and the fastest of several runs after a warm-up; on a shared machine read them as
/// orders of magnitude, and the ratio, measured in the same run, as the result.
/// </summary>
internal static class SegBenchmark
{
    public static int Run(string[] args)
    {
        var size = args.Length > 0 ? args[0] : "512x512x200";
        var runs = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 7;
        var dims = size.Split('x').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        if (dims.Length != 3)
        {
            Console.Error.WriteLine("usage: seg [COLUMNSxROWSxSLICES] [RUNS]   (default 512x512x200 7)");
            return 2;
        }
        var (columns, rows, slices) = (dims[0], dims[1], dims[2]);
        Console.WriteLine($"machine: {Environment.ProcessorCount} logical cores, .NET {Environment.Version}; series {columns}×{rows}×{slices}, {runs} runs");

        var files = SeriesFiles(columns, rows, slices);
        Console.WriteLine($"series: {files.Sum(f => (long)f.Length) / 1e6:F0} MB of Part 10 files");
        var series = Measure("series → volume (parse + build)", runs, () => SeriesVolumeBuilder.Build(files.Select(f => DicomReader.Read(f))));
        Console.WriteLine($"  {series.Summary}");

        var labels = LabelMap(series);
        var sources = files.Select(f => DicomReader.Read(f).Dataset).ToList();
        var segBytes = Measure("label map → BINARY SEG (write + Part 10 bytes)", runs, () =>
        {
            var written = SegmentationWriter.Write(labels, sources, [new(1, "liver"), new(2, "tumor"), new(3, "vessel")],
                new SegmentationWriterOptions(SegmentAlgorithmType.Automatic, "benchmark"));
            return DicomWriter.ToBytes(DicomFile.Create(written.Segmentation!));
        });
        var ours = LastMedian;
        var written = Measure("  of which SegmentationWriter.Write (data set, frames packed)", runs, () => SegmentationWriter.Write(labels, sources,
            [new(1, "liver"), new(2, "tumor"), new(3, "vessel")], new SegmentationWriterOptions(SegmentAlgorithmType.Automatic, "benchmark")));
        Measure("  of which DicomWriter.ToBytes (Part 10 bytes)", runs, () => DicomWriter.ToBytes(DicomFile.Create(written.Segmentation!)));
        Console.WriteLine($"  SEG: {DicomReader.Read(segBytes).Dataset.GetInt(DicomTags.NumberOfFrames)} frames, {segBytes.Length / 1e6:F1} MB");
        if (PydicomReference(labels, series, sources, runs) is { } reference)
        {
            Console.WriteLine($"  pydicom + numpy reference: median {reference:F0} ms → ours is {reference / ours:F1}× faster");
        }
        var mapping = SegmentMapping.Parse("liver=1,tumor=2,vessel=3");
        var result = Measure("SEG → label map (parse + read)", runs, () => SegmentationReader.Read(DicomReader.Read(segBytes), series.Grid, mapping));
        Console.WriteLine($"  SEG {segBytes.Length / 1e6:F1} MB; {string.Join(", ", result.Segments.Select(s => $"{s.Segment.Label}: {s.VoxelCount} voxels on {s.Slices.Count} slices"))}");
        return 0;
    }

    private static double LastMedian;

    private static T Measure<T>(string name, int runs, Func<T> action)
    {
        var cold = Stopwatch.StartNew();
        var result = action(); // warm-up: JIT, pools; timed, because the worker makes such a call once per case
        var first = cold.Elapsed.TotalMilliseconds;
        var times = new List<double>();
        for (var i = 0; i < runs; i++)
        {
            var clock = Stopwatch.StartNew();
            result = action();
            times.Add(clock.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        LastMedian = times[times.Count / 2];
        Console.WriteLine($"{name}: median {times[times.Count / 2]:F0} ms, fastest {times[0]:F0} ms, first call {first:F0} ms");
        return result;
    }

    private static List<byte[]> SeriesFiles(int columns, int rows, int slices)
    {
        var files = new byte[slices][];
        Parallel.For(0, slices, k =>
        {
            var ds = new DicomDataset();
            ds.SetString(DicomTags.SOPClassUID, DicomVR.UI, SopClasses.CTImage);
            ds.SetString(DicomTags.SOPInstanceUID, DicomVR.UI, $"1.2.826.0.1.3680043.8.498.99.{k + 1}");
            ds.SetString(DicomTags.StudyInstanceUID, DicomVR.UI, "1.2.826.0.1.3680043.8.498.99.1000");
            ds.SetString(DicomTags.SeriesInstanceUID, DicomVR.UI, "1.2.826.0.1.3680043.8.498.99.1001");
            ds.SetString(DicomTags.FrameOfReferenceUID, DicomVR.UI, "1.2.826.0.1.3680043.8.498.99.1002");
            ds.SetString(DicomTags.Modality, DicomVR.CS, "CT");
            ds.SetNumbers(DicomTags.InstanceNumber, DicomVR.IS, [slices - k]);
            ds.SetNumbers(DicomTags.ImagePositionPatient, DicomVR.DS, [-250, -250, -k * 1.25]);
            ds.SetNumbers(DicomTags.ImageOrientationPatient, DicomVR.DS, [1, 0, 0, 0, 1, 0]);
            ds.SetNumbers(DicomTags.PixelSpacing, DicomVR.DS, [0.977, 0.977]);
            ds.SetNumbers(DicomTags.SliceThickness, DicomVR.DS, [1.25]);
            ds.SetUInt16(DicomTags.SamplesPerPixel, 1);
            ds.SetString(DicomTags.PhotometricInterpretation, DicomVR.CS, "MONOCHROME2");
            ds.SetUInt16(DicomTags.Rows, (ushort)rows);
            ds.SetUInt16(DicomTags.Columns, (ushort)columns);
            ds.SetUInt16(DicomTags.BitsAllocated, 16);
            ds.SetUInt16(DicomTags.BitsStored, 12);
            ds.SetUInt16(DicomTags.HighBit, 11);
            ds.SetUInt16(DicomTags.PixelRepresentation, 0);
            ds.SetNumbers(DicomTags.RescaleIntercept, DicomVR.DS, [-1024]);
            ds.SetNumbers(DicomTags.RescaleSlope, DicomVR.DS, [1]);
            var pixels = new byte[rows * columns * 2];
            for (var p = 0; p < rows * columns; p++)
            {
                BinaryPrimitives.WriteUInt16LittleEndian(pixels.AsSpan(p * 2), (ushort)((p * 7 + k * 13) & 0xFFF));
            }
            ds.SetBytes(DicomTags.PixelData, DicomVR.OW, pixels);
            files[k] = DicomWriter.ToBytes(DicomFile.Create(ds));
        });
        return [.. files];
    }

    /// <summary>3 labels over 200 frames (100 + 60 + 40 slices), discs of a few thousand voxels.</summary>
    private static Volume LabelMap(SeriesVolume series)
    {
        var g = series.Grid.Geometry;
        var labels = Volume.Allocate(g, VoxelType.UInt8);
        void Disc(int value, int fromSlice, int count, int centreRow, int centreColumn, int radius)
        {
            for (var k = fromSlice; k < Math.Min(g.Slices, fromSlice + count); k++)
            {
                var slice = labels.SliceBytes(k);
                for (var r = Math.Max(0, centreRow - radius); r < Math.Min(g.Rows, centreRow + radius); r++)
                {
                    for (var c = Math.Max(0, centreColumn - radius); c < Math.Min(g.Columns, centreColumn + radius); c++)
                    {
                        if (((r - centreRow) * (r - centreRow)) + ((c - centreColumn) * (c - centreColumn)) < radius * radius)
                        {
                            slice[(r * g.Columns) + c] = (byte)value;
                        }
                    }
                }
            }
        }
        Disc(1, 0, 100, g.Rows / 2, g.Columns / 3, Math.Max(2, g.Rows / 6));
        Disc(2, 50, 60, g.Rows / 2, 2 * g.Columns / 3, Math.Max(2, g.Rows / 10));
        Disc(3, 120, 40, g.Rows / 4, g.Columns / 2, Math.Max(2, g.Rows / 20));
        return labels;
    }

    /// <summary>
    /// The reference: /usr/bin/python3 with numpy and pydicom writes the same SEG from the same label map — frames chosen and
    /// bit-packed with numpy (np.packbits, little bit order, over all frames at once as highdicom does), the same per-frame
    /// functional groups, references and segment descriptions built as pydicom data sets, written to Part 10 bytes in
    /// memory. Returns its median in ms, timed inside Python (start-up and reading the label map excluded), or null when
    /// python3 with pydicom is not there.
    /// </summary>
    private static double? PydicomReference(Volume labels, SeriesVolume series, List<DicomDataset> sources, int runs)
    {
        var script = Path.Combine(AppContext.BaseDirectory, "seg_reference.py");
        var temp = Directory.CreateTempSubdirectory("orthancseg-segbench-");
        try
        {
            var g = labels.Geometry;
            File.WriteAllBytes(Path.Combine(temp.FullName, "labels.raw"), labels.Data);
            var bySop = sources.ToDictionary(s => s.GetString(DicomTags.SOPInstanceUID)!, StringComparer.Ordinal);
            File.WriteAllLines(Path.Combine(temp.FullName, "slices.txt"), series.SopInstanceUids.Select(uid =>
                $"{uid} {string.Join('\\', bySop[uid].GetStrings(DicomTags.ImagePositionPatient))}"));
            var start = new System.Diagnostics.ProcessStartInfo(NiftiBenchmark.Python)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                ArgumentList = { script, temp.FullName, $"{g.Columns}", $"{g.Rows}", $"{g.Slices}", $"{runs}" },
            };
            using var process = System.Diagnostics.Process.Start(start)!;
            var output = process.StandardOutput.ReadToEnd();
            var error = process.StandardError.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
            {
                Console.WriteLine($"  pydicom reference not run: {error.Trim().Split('\n').LastOrDefault()}");
                return null;
            }
            Console.Write(string.Concat(output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => $"  {l}\n")));
            var median = output.Split('\n').Select(l => l.Trim()).First(l => l.StartsWith("median_ms ", StringComparison.Ordinal));
            return double.Parse(median["median_ms ".Length..], CultureInfo.InvariantCulture);
        }
        finally
        {
            temp.Delete(recursive: true);
        }
    }
}
