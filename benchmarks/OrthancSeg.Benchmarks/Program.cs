using OrthancSeg.Benchmarks;

// One subcommand per benchmark: `dotnet run -c Release --project benchmarks/OrthancSeg.Benchmarks -- nifti [options]`.
var commands = new Dictionary<string, (string Summary, Func<string[], int> Run)>(StringComparer.Ordinal)
{
    ["nifti"] = ("parallel .nii.gz writer vs GZipStream, gzip, pigz and dcm2niix -z y", NiftiBenchmark.Run),
    ["records"] = ("issue 4: Events pushes/s, catch-up of 10,000 changes, Orthanc upload time with the bridge (own stack, or --url a running worker)", RecordsBenchmark.Run),
    ["convert"] = ("DICOM series → .nii.gz: in-process and the CLI as a process vs dcm2niix -z y", ConvertBenchmark.Run),
    ["seg"] = ("series → volume and a 3-segment, 200-frame SEG → label map", SegBenchmark.Run),
    ["training"] = ("issue 9: StartTraining → first nnU-Net process (local), and 200 fold jobs on two GPUs: concurrency and overhead per job", TrainingBenchmark.Run),
    ["inference"] = ("issue 10: series stable → SEG stored in Orthanc for a 512×512×200 CT, the predictor excluded (own stack, nnU-Net stand-ins)", InferenceBenchmark.Run),
    ["link"] = ("issue 13: export throughput across a TLS link between two network namespaces vs the same export on one machine (root)", LinkBenchmark.Run),
    ["snapshot"] = ("Orthanc → nnU-Net dataset: our export vs orthanc-neuro vs archive + dcm2niix, and a 20-series snapshot", SnapshotBenchmark.Run),
};

if (args.Length == 0 || !commands.TryGetValue(args[0], out var command))
{
    Console.Error.WriteLine("usage: OrthancSeg.Benchmarks <benchmark> [options]");
    foreach (var (name, (summary, _)) in commands)
    {
        Console.Error.WriteLine($"  {name,-12} {summary}");
    }
    return 2;
}
return command.Run(args[1..]);
