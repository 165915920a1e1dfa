using System.Diagnostics;
using System.Globalization;
using OrthancSeg.Dicom;
using OrthancSeg.Dicom.Nifti;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Benchmarks;

/// <summary>
/// DICOM series → .nii.gz, the way a user runs a converter: the same 200 Part 10 files on disk (written by
/// pydicom from a synthetic CT), converted by our code in this process (read, build, write), by the
/// `orthancseg convert series` CLI as a whole process (start-up included), and by `dcm2niix -z y` (which
/// compresses with pigz when it is installed). Rounds alternate the three so that load on a shared machine
/// hits them alike; the medians and their ratios are printed. Targets (issue 3): at least 3× faster than
/// dcm2niix, output at most 1.05× its size, and the CLI keeps that lead.
/// </summary>
internal static class ConvertBenchmark
{
    public static int Run(string[] args)
    {
        var size = args.Length > 0 ? args[0] : "512x512x200";
        var rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 5;
        var dims = size.Split('x').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        if (dims.Length != 3 || rounds < 1)
        {
            Console.Error.WriteLine("usage: convert [COLUMNSxROWSxSLICES] [ROUNDS]   (default 512x512x200 5)");
            return 2;
        }
        var cli = FindCli();
        if (cli is null)
        {
            Console.Error.WriteLine("The CLI is not built: run `dotnet build -c Release worker/OrthancSeg.Cli` first");
            return 2;
        }
        if (!File.Exists("/usr/bin/dcm2niix"))
        {
            Console.Error.WriteLine("dcm2niix is not installed (apt-get install dcm2niix)");
            return 2;
        }

        var directory = Directory.CreateTempSubdirectory("orthancseg-convert-bench-").FullName;
        try
        {
            var dicom = WriteSeries(directory, dims[0], dims[1], dims[2]);
            var dicomBytes = Directory.GetFiles(dicom).Sum(f => new FileInfo(f).Length);
            Console.WriteLine($"machine: {Environment.ProcessorCount} logical cores, .NET {Environment.Version}, load average {LoadAverage()}");
            Console.WriteLine($"series: {dims[2]} files, {dicomBytes / 1e6:F0} MB, {size} int16; {rounds} rounds; CLI {string.Join(" ", cli)}");

            var inProcess = new List<double>();
            var process = new List<double>();
            var reference = new List<double>();
            long ourBytes = 0, cliBytes = 0, referenceBytes = 0;
            InProcess(dicom, Path.Combine(directory, "warmup.nii.gz")); // JIT
            for (var round = 0; round < rounds; round++)
            {
                var ours = Path.Combine(directory, $"ours{round}.nii.gz");
                inProcess.Add(Time(() => InProcess(dicom, ours)));
                ourBytes = new FileInfo(ours).Length;

                var viaCli = Path.Combine(directory, $"cli{round}.nii.gz");
                process.Add(Time(() => NiftiBenchmark.RunProcess(cli[0], [.. cli[1..], "convert", "series", dicom, viaCli])));
                cliBytes = new FileInfo(viaCli).Length;

                var outDir = Directory.CreateDirectory(Path.Combine(directory, $"dcm2niix{round}")).FullName;
                reference.Add(Time(() => NiftiBenchmark.RunProcess("/usr/bin/dcm2niix", ["-z", "y", "-f", "ct", "-o", outDir, dicom])));
                referenceBytes = new FileInfo(Directory.GetFiles(outDir, "*.nii.gz").Single()).Length;
            }
            CheckSameVoxels(Path.Combine(directory, "ours0.nii.gz"), Path.Combine(directory, "cli0.nii.gz"));

            var referenceMedian = Median(reference);
            Console.WriteLine();
            Console.WriteLine($"{"converter",-40} {"median s",9} {"fastest s",10} {"MB",7} {"speed-up",9} {"size ratio",11}");
            Print("dcm2niix -z y (process)", reference, referenceBytes, referenceMedian, referenceBytes);
            Print("orthancseg convert series (process)", process, cliBytes, referenceMedian, referenceBytes);
            Print("DicomReader+builder+NiftiWriter (in-proc)", inProcess, ourBytes, referenceMedian, referenceBytes);
            var verdict = referenceMedian / Median(process) >= 3 && (double)cliBytes / referenceBytes <= 1.05 ? "met" : "NOT met";
            Console.WriteLine($"target (≥ 3× faster as a process, ≤ 1.05× size): {verdict}");
            return 0;
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static void InProcess(string dicom, string output)
    {
        var paths = Directory.GetFiles(dicom);
        var files = new DicomFile[paths.Length];
        Parallel.For(0, paths.Length, i => files[i] = DicomReader.ReadFile(paths[i]));
        NiftiWriter.WriteFile(SeriesVolumeBuilder.Build(files).Volume, output);
    }

    private static string WriteSeries(string directory, int columns, int rows, int slices)
    {
        var raw = Path.Combine(directory, "volume.nii");
        using (var stream = File.Create(raw))
        {
            NiftiWriter.Write(NiftiBenchmark.SyntheticCt(columns, rows, slices, seed: 42), stream, compress: false);
        }
        var dicom = Directory.CreateDirectory(Path.Combine(directory, "dicom")).FullName;
        var spacing = NiftiBenchmark.SyntheticSpacing;
        NiftiBenchmark.RunProcess(NiftiBenchmark.Python, ["-c", NiftiBenchmark.DicomSeriesScript, raw, dicom,
            $"{columns}", $"{rows}", $"{slices}", Invariant(spacing.X), Invariant(spacing.Y), Invariant(spacing.Z)]);
        File.Delete(raw);
        return dicom;
    }

    /// <summary>The process and the in-process path must produce the same volume, or the timing compares different work.</summary>
    private static void CheckSameVoxels(string a, string b)
    {
        var first = NiftiReader.ReadFile(a).ToVolume();
        var second = NiftiReader.ReadFile(b).ToVolume();
        if (!first.Data.AsSpan().SequenceEqual(second.Data) || !first.Geometry.SameGridAs(second.Geometry))
        {
            throw new InvalidOperationException("The CLI and the in-process conversion produced different volumes");
        }
    }

    /// <summary>The built CLI: its apphost, else `dotnet orthancseg.dll`, from the Release output beside this repository's benchmarks.</summary>
    private static string[]? FindCli()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "OrthancSeg.sln")))
            {
                var bin = Path.Combine(dir.FullName, "worker", "OrthancSeg.Cli", "bin", "Release", "net10.0");
                return File.Exists(Path.Combine(bin, "orthancseg")) ? [Path.Combine(bin, "orthancseg")]
                    : File.Exists(Path.Combine(bin, "orthancseg.dll")) ? ["dotnet", Path.Combine(bin, "orthancseg.dll")]
                    : null;
            }
        }
        return null;
    }

    private static void Print(string name, List<double> seconds, long bytes, double referenceMedian, long referenceBytes) =>
        Console.WriteLine($"{name,-40} {Median(seconds),9:F2} {seconds.Min(),10:F2} {bytes / 1e6,7:F1} {referenceMedian / Median(seconds),8:F2}× {(double)bytes / referenceBytes,10:F3}×");

    private static double Time(Action action)
    {
        var clock = Stopwatch.StartNew();
        action();
        return clock.Elapsed.TotalSeconds;
    }

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

    private static string Invariant(double value) => value.ToString(CultureInfo.InvariantCulture);

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";
}
