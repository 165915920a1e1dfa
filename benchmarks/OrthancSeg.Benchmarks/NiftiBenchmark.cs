using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Security.Cryptography;
using OrthancSeg.Dicom.Nifti;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Benchmarks;

/// <summary>
/// Writes a synthetic CT-like int16 volume as .nii.gz with our parallel block gzip and compares wall time
/// and size with .NET's single-threaded GZipStream at the same level, gzip and pigz on the same .nii,
/// and dcm2niix -z y on the same voxels written as a DICOM series (pydicom). Every figure is one run on
/// whatever machine this is; on a shared machine read them as orders of magnitude.
/// </summary>
internal static class NiftiBenchmark
{
    internal const string Python = "/usr/bin/python3";

    private sealed record Options(int Columns, int Rows, int Slices, int Level, int Threads, int BlockKib, int Seed, int[] SweepLevels, bool Dcm2niix, bool Keep);

    private sealed record Measurement(string Name, double Seconds, long Bytes, string Note = "");

    public static int Run(string[] args)
    {
        Options options;
        try
        {
            options = Parse(args);
        }
        catch (FormatException e)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine("options: --size 512x512x200 --level 6 --threads N --block-kib 256 --seed 42 --sweep 1,3,6,9|none --no-dcm2niix --keep");
            return 2;
        }

        var directory = Directory.CreateTempSubdirectory("orthancseg-bench-nifti-").FullName;
        try
        {
            Execute(options, directory);
        }
        finally
        {
            if (options.Keep)
            {
                Console.WriteLine($"files kept in {directory}");
            }
            else
            {
                Directory.Delete(directory, recursive: true);
            }
        }
        return 0;
    }

    private static void Execute(Options o, string directory)
    {
        Console.WriteLine($"machine: {Environment.ProcessorCount} logical cores, .NET {Environment.Version}; volume {o.Columns}×{o.Rows}×{o.Slices} int16, seed {o.Seed}; blocks {o.BlockKib} KiB");
        var clock = Stopwatch.StartNew();
        var volume = SyntheticCt(o.Columns, o.Rows, o.Slices, o.Seed);
        Console.WriteLine($"generated in {clock.Elapsed.TotalSeconds:F2} s");

        var rawPath = Path.Combine(directory, "ct.nii");
        NiftiWriter.WriteFile(volume, rawPath);
        var rawBytes = new FileInfo(rawPath).Length;
        var rawHash = SHA256.HashData(File.ReadAllBytes(rawPath));

        // JIT and pool warm-up on a small volume so the first measured run is not penalised.
        NiftiWriter.Write(SyntheticCt(128, 128, 8, o.Seed), Stream.Null, compress: true);

        var results = new List<Measurement>();
        var ours = Path.Combine(directory, "ours.nii.gz");
        results.Add(Ours($"ours, level {o.Level}, {o.Threads} threads", volume, ours, o.Level, o.Threads, o.BlockKib));
        Verify(ours, rawHash);
        results.Add(Ours($"ours, level {o.Level}, 1 thread", volume, Path.Combine(directory, "ours1.nii.gz"), o.Level, 1, o.BlockKib));
        results.Add(DotNetGzip($"GZipStream, level {o.Level}, 1 thread", volume, Path.Combine(directory, "gzipstream.nii.gz"), o.Level));
        // The tools at their default level 6 (what people run) and at ours, when that differs.
        foreach (var level in new[] { 6, o.Level }.Distinct())
        {
            results.Add(ExternalCompressor($"gzip -{level}", "gzip", $"-{level} -c", rawPath, Path.Combine(directory, $"gzip{level}.nii.gz")));
            if (File.Exists("/usr/bin/pigz"))
            {
                results.Add(ExternalCompressor($"pigz -{level} -p {o.Threads}", "pigz", $"-{level} -p {o.Threads} -c", rawPath, Path.Combine(directory, $"pigz{level}.nii.gz")));
            }
        }
        if (!File.Exists("/usr/bin/pigz"))
        {
            Console.WriteLine("pigz not installed: skipped");
        }

        Measurement? dcm2niix = null;
        if (o.Dcm2niix)
        {
            dcm2niix = Dcm2niix(o, directory, rawPath);
            if (dcm2niix is not null)
            {
                results.Add(dcm2niix);
            }
        }

        Console.WriteLine();
        Console.WriteLine($"uncompressed .nii: {rawBytes / 1e6:F1} MB");
        Console.WriteLine($"{"writer",-34} {"wall s",8} {"MB",8} {"ratio",7} {"MB/s",8} {"vs dcm2niix",12}  note");
        foreach (var m in results)
        {
            Print(m, rawBytes, dcm2niix);
        }

        if (o.SweepLevels.Length > 0)
        {
            Console.WriteLine();
            Console.WriteLine($"level sweep, ours with {o.Threads} threads:");
            foreach (var level in o.SweepLevels)
            {
                Print(Ours($"ours, level {level}", volume, Path.Combine(directory, $"sweep{level}.nii.gz"), level, o.Threads, o.BlockKib), rawBytes, dcm2niix);
            }
        }
    }

    private static void Print(Measurement m, long rawBytes, Measurement? dcm2niix)
    {
        var versus = dcm2niix is null ? "" : $"{(double)m.Bytes / dcm2niix.Bytes:F3}×";
        Console.WriteLine($"{m.Name,-34} {m.Seconds,8:F2} {m.Bytes / 1e6,8:F2} {(double)rawBytes / m.Bytes,7:F2} {rawBytes / 1e6 / m.Seconds,8:F1} {versus,12}  {m.Note}");
    }

    private static Measurement Ours(string name, Volume volume, string path, int level, int threads, int blockKib)
    {
        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        var clock = Stopwatch.StartNew();
        NiftiWriter.WriteFile(volume, path, NiftiWriteOptions.Default with { CompressionLevel = level, MaxDegreeOfParallelism = threads, BlockSize = blockKib * 1024 });
        var seconds = clock.Elapsed.TotalSeconds;
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
        return new Measurement(name, seconds, new FileInfo(path).Length, $"managed allocations {allocated / 1e6:F1} MB");
    }

    private static Measurement DotNetGzip(string name, Volume volume, string path, int level)
    {
        var clock = Stopwatch.StartNew();
        using (var file = File.Create(path))
        using (var gzip = new GZipStream(file, new ZLibCompressionOptions { CompressionLevel = level }))
        {
            NiftiWriter.Write(volume, gzip, compress: false);
        }
        return new Measurement(name, clock.Elapsed.TotalSeconds, new FileInfo(path).Length);
    }

    private static Measurement ExternalCompressor(string name, string program, string arguments, string input, string output)
    {
        var clock = Stopwatch.StartNew();
        Shell($"{program} {arguments} '{input}' > '{output}'");
        return new Measurement(name, clock.Elapsed.TotalSeconds, new FileInfo(output).Length, "from the .nii on disk");
    }

    private static Measurement? Dcm2niix(Options o, string directory, string rawPath)
    {
        if (!File.Exists("/usr/bin/dcm2niix"))
        {
            Console.WriteLine("dcm2niix not installed: skipped");
            return null;
        }
        var dicom = Directory.CreateDirectory(Path.Combine(directory, "dicom")).FullName;
        var output = Directory.CreateDirectory(Path.Combine(directory, "dcm2niix")).FullName;
        var clock = Stopwatch.StartNew();
        var spacing = SyntheticSpacing;
        RunProcess(Python, ["-c", DicomSeriesScript, rawPath, dicom, $"{o.Columns}", $"{o.Rows}", $"{o.Slices}",
            spacing.X.ToString(CultureInfo.InvariantCulture), spacing.Y.ToString(CultureInfo.InvariantCulture), spacing.Z.ToString(CultureInfo.InvariantCulture)]);
        Console.WriteLine($"DICOM series written by pydicom in {clock.Elapsed.TotalSeconds:F1} s");

        clock.Restart();
        var log = RunProcess("/usr/bin/dcm2niix", ["-z", "y", "-f", "ct", "-o", output, dicom]);
        var seconds = clock.Elapsed.TotalSeconds;
        var produced = Directory.GetFiles(output, "*.nii.gz");
        if (produced.Length != 1)
        {
            Console.WriteLine($"dcm2niix produced {produced.Length} .nii.gz files, not 1:\n{log}");
            return null;
        }
        var compressor = log.Split('\n').FirstOrDefault(l => l.Contains("ompress", StringComparison.Ordinal))?.Trim() ?? "";
        return new Measurement("dcm2niix -z y", seconds, new FileInfo(produced[0]).Length, $"DICOM → .nii.gz incl. parsing; {compressor}");
    }

    private static void Verify(string gzPath, byte[] rawHash)
    {
        using var gzip = new GZipStream(File.OpenRead(gzPath), CompressionMode.Decompress);
        if (!SHA256.HashData(gzip).AsSpan().SequenceEqual(rawHash))
        {
            throw new InvalidOperationException($"{gzPath} does not decompress to the .nii");
        }
    }

    private static void Shell(string command) => RunProcess("/bin/sh", ["-c", command]);

    internal static string RunProcess(string program, string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {program}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} failed ({process.ExitCode}): {stderr.Result}");
        }
        return stdout.Result + stderr.Result;
    }

    internal static readonly Vector3D SyntheticSpacing = new(0.78125, 0.78125, 1.25);

    /// <summary>
    /// Body-like CT: a circular field of view padded with −2048 outside, air with noise, an elliptical
    /// body with a fat rim, soft tissue with organs, lungs over part of the range, a spine and a table;
    /// Gaussian noise from a seeded table. Slices are generated in parallel but each from its own seed.
    /// </summary>
    internal static Volume SyntheticCt(int nx, int ny, int nz, int seed)
    {
        var geometry = new VolumeGeometry(nx, ny, nz, SyntheticSpacing, new Vector3D(-nx * SyntheticSpacing.X / 2, -ny * SyntheticSpacing.Y / 2, -300),
            new Vector3D(1, 0, 0), new Vector3D(0, 1, 0), new Vector3D(0, 0, 1));
        var volume = Volume.Allocate(geometry, VoxelType.Int16);
        var noise = new float[1 << 16];
        var random = new Random(seed);
        for (var i = 0; i < noise.Length; i++)
        {
            noise[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
        }

        Parallel.For(0, nz, k =>
        {
            var slice = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, short>(volume.SliceBytes(k));
            var z = nz == 1 ? 0.5 : k / (double)(nz - 1);
            var state = (uint)((seed * 7919) ^ (k * 104729)) | 1u;
            double bodyA = 0.40 * nx * (1 + (0.06 * Math.Sin(2 * Math.PI * z))), bodyB = 0.27 * ny * (1 + (0.04 * Math.Cos(2 * Math.PI * z)));
            var lungs = z is > 0.45 and < 0.9;
            for (var j = 0; j < ny; j++)
            {
                for (var i = 0; i < nx; i++)
                {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    var n = noise[state & 0xFFFF];
                    double x = i - (nx / 2.0), y = j - (ny / 2.0);
                    double value;
                    if ((x * x) + (y * y) > 0.25 * nx * nx)
                    {
                        value = -2048;
                    }
                    else if (j > 0.5 * ny + (0.30 * ny) && j < 0.5 * ny + (0.32 * ny))
                    {
                        value = 250 + (30 * n);
                    }
                    else
                    {
                        var body = ((x / bodyA) * (x / bodyA)) + ((y / bodyB) * (y / bodyB));
                        if (body > 1)
                        {
                            value = -1000 + (10 * n);
                        }
                        else if (body > 0.85)
                        {
                            value = -100 + (15 * n);
                        }
                        else if (Circle(x, y - (0.17 * ny), 0.04 * nx))
                        {
                            value = 700 + (60 * n);
                        }
                        else if (lungs && (Ellipse(x - (0.17 * nx), y + (0.02 * ny), 0.11 * nx, 0.15 * ny) || Ellipse(x + (0.17 * nx), y + (0.02 * ny), 0.11 * nx, 0.15 * ny)))
                        {
                            value = -850 + (40 * n);
                        }
                        else if (!lungs && Ellipse(x + (0.12 * nx), y + (0.03 * ny), 0.15 * nx, 0.12 * ny))
                        {
                            value = 60 + (15 * n);
                        }
                        else
                        {
                            value = 35 + (15 * n);
                        }
                    }
                    slice[(j * nx) + i] = (short)Math.Round(value);
                }
            }
        });
        return volume;
    }

    private static bool Circle(double x, double y, double r) => (x * x) + (y * y) < r * r;

    private static bool Ellipse(double x, double y, double a, double b) => ((x / a) * (x / a)) + ((y / b) * (y / b)) < 1;

    private static Options Parse(string[] args)
    {
        var o = new Options(512, 512, 200, NiftiWriteOptions.Default.CompressionLevel, Environment.ProcessorCount, NiftiWriteOptions.Default.BlockSize / 1024, 42, [1, 2, 3, 4, 5, 6, 7, 8, 9], true, false);
        for (var a = 0; a < args.Length; a++)
        {
            string Next() => a + 1 < args.Length ? args[++a] : throw new FormatException($"{args[a]} needs a value");
            switch (args[a])
            {
                case "--size":
                    var parts = Next().Split('x').Select(int.Parse).ToArray();
                    o = parts.Length == 3 ? o with { Columns = parts[0], Rows = parts[1], Slices = parts[2] } : throw new FormatException("--size wants CxRxS");
                    break;
                case "--level": o = o with { Level = int.Parse(Next(), CultureInfo.InvariantCulture) }; break;
                case "--threads": o = o with { Threads = int.Parse(Next(), CultureInfo.InvariantCulture) }; break;
                case "--block-kib": o = o with { BlockKib = int.Parse(Next(), CultureInfo.InvariantCulture) }; break;
                case "--seed": o = o with { Seed = int.Parse(Next(), CultureInfo.InvariantCulture) }; break;
                case "--sweep":
                    var levels = Next();
                    o = o with { SweepLevels = levels == "none" ? [] : [.. levels.Split(',').Select(l => int.Parse(l, CultureInfo.InvariantCulture))] };
                    break;
                case "--no-dcm2niix": o = o with { Dcm2niix = false }; break;
                case "--keep": o = o with { Keep = true }; break;
                default: throw new FormatException($"unknown option {args[a]}");
            }
        }
        return o;
    }

    /// <summary>Writes the .nii's voxels as a CT series (one Explicit VR LE file per slice, ascending z).</summary>
    internal const string DicomSeriesScript = """
        import sys, os
        import numpy as np, pydicom
        from pydicom.dataset import Dataset, FileMetaDataset
        from pydicom.uid import ExplicitVRLittleEndian, generate_uid
        raw, out = sys.argv[1], sys.argv[2]
        nx, ny, nz = (int(v) for v in sys.argv[3:6])
        sx, sy, sz = (float(v) for v in sys.argv[6:9])
        vol = np.memmap(raw, dtype='<i2', mode='r', offset=352, shape=(nz, ny, nx))
        ct = '1.2.840.10008.5.1.4.1.1.2'
        study, series, frame = generate_uid(), generate_uid(), generate_uid()
        for k in range(nz):
            uid = generate_uid()
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = ct
            meta.MediaStorageSOPInstanceUID = uid
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = Dataset()
            ds.file_meta = meta
            ds.is_little_endian, ds.is_implicit_VR = True, False
            ds.SOPClassUID, ds.SOPInstanceUID = ct, uid
            ds.Modality, ds.PatientName, ds.PatientID = 'CT', 'Bench^Mark', 'BENCH'
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
            ds.StudyDate, ds.StudyTime, ds.SeriesNumber, ds.InstanceNumber = '20260101', '120000', 1, k + 1
            ds.ImagePositionPatient = [-nx * sx / 2, -ny * sy / 2, -300 + k * sz]
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            ds.PixelSpacing, ds.SliceThickness = [sy, sx], sz
            ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = ny, nx, 1, 'MONOCHROME2'
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
            ds.RescaleIntercept, ds.RescaleSlope = 0, 1
            ds.PixelData = np.ascontiguousarray(vol[k]).tobytes()
            ds.save_as(os.path.join(out, f'{k:04d}.dcm'), write_like_original=False)
        """;
}
