using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using OrthancSeg.Dicom;
using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Benchmarks;

/// <summary>
/// The imaging hot paths of a case, on a synthetic 512×512×200 CT series held as Part 10 bytes in memory:
/// series → volume (parse every file, sort, decode, rescale) and SEG → label map for a BINARY SEG of 3 segments
/// over 200 frames (parse the SEG, place frames, unpack bits, paint). Target for the SEG: under 150 ms.
/// Reports the median and the fastest of several runs after a warm-up; on a shared machine read them as
/// orders of magnitude.
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

        var segBytes = SegFile(series, files);
        var mapping = SegmentMapping.Parse("liver=1,tumor=2,vessel=3");
        var result = Measure("SEG → label map (parse + read)", runs, () => SegmentationReader.Read(DicomReader.Read(segBytes), series.Grid, mapping));
        Console.WriteLine($"  SEG {segBytes.Length / 1e6:F1} MB; {string.Join(", ", result.Segments.Select(s => $"{s.Segment.Label}: {s.VoxelCount} voxels on {s.Slices.Count} slices"))}");
        return 0;
    }

    private static T Measure<T>(string name, int runs, Func<T> action)
    {
        var result = action(); // warm-up: JIT, pools
        var times = new List<double>();
        for (var i = 0; i < runs; i++)
        {
            var clock = Stopwatch.StartNew();
            result = action();
            times.Add(clock.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        Console.WriteLine($"{name}: median {times[times.Count / 2]:F0} ms, fastest {times[0]:F0} ms");
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

    /// <summary>A BINARY SEG of 3 segments over 200 frames (100 + 60 + 40 slices), discs of a few thousand voxels.</summary>
    private static byte[] SegFile(SeriesVolume series, List<byte[]> files)
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
        var sources = files.Select(f => DicomReader.Read(f).Dataset).ToList();
        var written = SegmentationWriter.Write(labels, sources, [new(1, "liver"), new(2, "tumor"), new(3, "vessel")],
            new SegmentationWriterOptions(SegmentAlgorithmType.Automatic, "benchmark"));
        Console.WriteLine($"SEG: {written.Segmentation!.GetInt(DicomTags.NumberOfFrames)} frames");
        return DicomWriter.ToBytes(DicomFile.Create(written.Segmentation!));
    }
}
