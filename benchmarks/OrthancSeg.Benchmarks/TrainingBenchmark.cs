using System.Diagnostics;
using System.Globalization;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Npgsql;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Dicom;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.Tests.Support;

namespace OrthancSeg.Benchmarks;

/// <summary>
/// `training`: the worker's own dispatch overhead on the local backend. Self-contained: a throwaway PostgreSQL and Orthanc (the
/// integration tests' fixtures), the Release worker with two configured GPUs and the nnU-Net stand-ins (tests/nnunet-standin) behind
/// a wrapper that stamps every command's start and end with its CUDA_VISIBLE_DEVICES. Five small series with SEGs feed one workflow
/// per run, each exported to a snapshot. Measured: (1) StartTraining answered → the first nnU-Net process (preprocessing) started, per
/// run; (2) 200 fold jobs (40 runs × 5 folds, one GPU each) on two GPUs: the most fold processes running at once, and the GPU idle
/// time between one fold's end and the next fold's start on the same GPU while a fold was waiting: the worker's overhead per job;
/// (3) when Slurm is installed, a one-node cluster of its own (the integration tests' fixture, two fake GPUs): StartTraining →
/// the preprocessing job's id from sbatch recorded, against a bare `sbatch --parsable` of the same cluster.
/// </summary>
internal static class TrainingBenchmark
{
    public static int Run(string[] args) => RunAsync(Options.Parse(args)).GetAwaiter().GetResult();

    private sealed record Options(int Runs, int LatencyRuns)
    {
        public static Options Parse(string[] args)
        {
            var runs = 40;
            var latency = 10;
            for (var i = 0; i < args.Length; i++)
            {
                switch (args[i])
                {
                    case "--runs": runs = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                    case "--latency-runs": latency = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                    default: throw new ArgumentException($"training: unknown option {args[i]} (--runs 40 --latency-runs 10)");
                }
            }
            if (latency > runs)
            {
                throw new ArgumentException("training: --latency-runs cannot exceed --runs (each measured start uses its own workflow)");
            }
            return new Options(runs, latency);
        }
    }

    /// <summary>One nnU-Net process as the wrapper stamped it.</summary>
    private sealed record Stamp(string Command, int DatasetId, string Fold, string Gpu, double Start, double End);

    private static async Task<int> RunAsync(Options options)
    {
        var root = Directory.CreateTempSubdirectory("orthancseg-training-bench-").FullName;
        var raw = Path.Combine(root, "nnUNet_raw");
        Directory.CreateDirectory(raw);
        var stamps = Path.Combine(root, "stamps.txt");
        var wrapper = Path.Combine(root, "stamp.sh");
        await File.WriteAllTextAsync(wrapper, """
            #!/bin/bash
            # Stamps the command's start and end (epoch seconds) with its GPUs, around running it.
            printf 'start %s %s %s\n' "$(date +%s.%N)" "${CUDA_VISIBLE_DEVICES:-cpu}" "$*" >> "$BENCH_STAMPS"
            "$@"; rc=$?
            printf 'end %s %s %s\n' "$(date +%s.%N)" "${CUDA_VISIBLE_DEVICES:-cpu}" "$*" >> "$BENCH_STAMPS"
            exit $rc
            """.Replace("\r", "", StringComparison.Ordinal));
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("training: the local backend and its stand-ins run on Linux only");
        }
        File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Console.WriteLine($"training benchmark: {options.Runs} runs × 5 folds on 2 configured GPUs, {options.LatencyRuns} timed starts "
            + $"({Environment.ProcessorCount} cores, load {LoadAverage()}), work directory {root}");

        await using var orthanc = new OrthancServer { LoadBridge = false };
        await orthanc.InitializeAsync();
        var cluster = SlurmCluster.IsInstalled ? new SlurmCluster() : null;
        try
        {
            if (cluster is not null)
            {
                await cluster.InitializeAsync();
            }
            return await MeasureAsync(options, raw, stamps, wrapper, orthanc, cluster);
        }
        finally
        {
            if (cluster is not null)
            {
                await cluster.DisposeAsync();
            }
            Directory.Delete(root, recursive: true);
        }
    }

    private static async Task<int> MeasureAsync(Options options, string raw, string stamps, string wrapper, OrthancServer orthanc, SlurmCluster? cluster)
    {
        var worker = await WorkerProcess.StartAsync(orthanc.Postgres, new Dictionary<string, string>
        {
            ["OrthancSeg:Orthanc:Url"] = orthanc.BaseUrl.ToString().TrimEnd('/'),
            ["OrthancSeg:Orthanc:Username"] = OrthancServer.Username,
            ["OrthancSeg:Orthanc:PasswordFile"] = orthanc.PasswordFile,
            ["OrthancSeg:Records:CatchUpInterval"] = "00:00:01",
            ["OrthancSeg:Records:NewSeriesCheckDelay"] = "00:00:02",
            ["OrthancSeg:Jobs:PollInterval"] = "00:00:00.200",
            ["OrthancSeg:Datasets:RawRoot"] = raw,
            ["OrthancSeg:Training:NnUnet:BinDirectory"] = Path.Combine(RepositoryPaths.Root, "tests", "nnunet-standin"),
            ["OrthancSeg:Training:NnUnet:Wrapper:0"] = wrapper,
            ["OrthancSeg:Training:NnUnet:Environment:BENCH_STAMPS"] = stamps,
            ["OrthancSeg:Training:NnUnet:Environment:ORTHANCSEG_STANDIN_EPOCHS"] = "1",
            ["OrthancSeg:Training:NnUnet:Environment:ORTHANCSEG_STANDIN_STEP_SECONDS"] = "0",
            ["OrthancSeg:Training:Local:Gpus:0"] = "0",
            ["OrthancSeg:Training:Local:Gpus:1"] = "1",
            ["OrthancSeg:Training:Local:Cpus"] = "64",
            ["OrthancSeg:Training:Local:MemoryMiB"] = "64000",
            ["OrthancSeg:Training:Slurm:ConfigFile"] = cluster?.ConfigFile ?? "",
            ["Serilog:MinimumLevel:Default"] = "Warning",
        });
        try
        {
            var invoker = worker.CreateChannel().Intercept(m =>
            {
                m.Add("authorization", $"Bearer {worker.AdminToken}");
                return m;
            });
            var snapshotClient = new SnapshotService.SnapshotServiceClient(invoker);
            var workflowClient = new WorkflowService.WorkflowServiceClient(invoker);
            var training = new TrainingService.TrainingServiceClient(invoker);

            // Workflows admitting every CT series, five series with a SEG each, one snapshot per workflow.
            var names = Enumerable.Range(1, options.Runs).Select(i => string.Create(CultureInfo.InvariantCulture, $"bench-{i:000}")).ToList();
            for (var i = 0; i < names.Count; i++)
            {
                await workflowClient.CreateWorkflowAsync(new CreateWorkflowRequest
                {
                    Workflow = new Workflow
                    {
                        Name = names[i],
                        DatasetId = 100 + i + 1,
                        Selection = new SelectionRule { Modality = "CT" },
                        Labels = { new LabelDefinition { Value = 1, Name = "liver" } },
                    },
                });
            }
            using var http = orthanc.CreateClient();
            var series = Enumerable.Range(0, 5).Select(_ => new TestSeries(slices: 4, rows: 16, columns: 16)).ToList();
            foreach (var file in series.SelectMany(s => s.Files()))
            {
                await UploadAsync(http, file);
            }
            await WaitAsync(worker.ConnectionString, "SELECT count(*) FROM cases", 5L * options.Runs, "cases");
            foreach (var s in series)
            {
                await UploadAsync(http, s.Seg([new(1, "Liver")], [new(0, 1), new(1, 1), new(2, 1), new(3, 1)]));
            }
            await WaitAsync(worker.ConnectionString, "SELECT count(*) FROM cases WHERE status = 'labeled'", 5L * options.Runs, "labelled cases");
            var snapshots = new List<long>();
            foreach (var name in names)
            {
                snapshots.Add((await snapshotClient.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = name })).Snapshot.Id);
            }
            await WaitAsync(worker.ConnectionString, "SELECT count(*) FROM snapshots WHERE state = 'succeeded'", options.Runs, "snapshots");

            // (1) StartTraining → the first nnU-Net process, one run at a time on an idle worker.
            var latencies = new List<double>();
            for (var i = 0; i < options.LatencyRuns; i++)
            {
                var asked = UnixNow();
                var run = (await training.StartTrainingAsync(Request(names[i], snapshots[i], "all"))).Run;
                var answered = UnixNow();
                var started = await FirstStartAsync(stamps, 100 + i + 1);
                latencies.Add(started - asked);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  run {run.Id}: StartTraining answered in {(answered - asked) * 1000:0} ms, nnU-Net preprocessing started {(started - asked) * 1000:0} ms after the call"));
                await WaitAsync(worker.ConnectionString, $"SELECT count(*) FROM training_runs WHERE id = {run.Id} AND state NOT IN ('queued', 'running')", 1, $"run {run.Id}");
            }
            latencies.Sort();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"StartTraining → first nnU-Net process (local): median {Median(latencies) * 1000:0} ms, min {latencies[0] * 1000:0} ms, max {latencies[^1] * 1000:0} ms over {latencies.Count} runs"));

            // (2) 200 fold jobs on two GPUs.
            var from = UnixNow();
            var watch = Stopwatch.StartNew();
            var runIds = new List<long>();
            for (var i = 0; i < names.Count; i++)
            {
                runIds.Add((await training.StartTrainingAsync(Request(names[i], snapshots[i], "0", "1", "2", "3", "4"))).Run.Id);
            }
            var startCalls = watch.Elapsed;
            await WaitAsync(worker.ConnectionString, $"SELECT count(*) FROM training_runs WHERE id >= {runIds[0]} AND state NOT IN ('queued', 'running')",
                runIds.Count, "the 200-fold runs", TimeSpan.FromMinutes(60));
            watch.Stop();
            var succeeded = await ScalarAsync(worker.ConnectionString, $"SELECT count(*) FROM training_runs WHERE id >= {runIds[0]} AND state = 'succeeded'");
            var all = ReadStamps(stamps).Where(s => s.Start >= from).ToList();
            var folds = all.Where(s => s.Command == "train").ToList();
            var ready = all.Where(s => s.Command == "preprocess").ToDictionary(s => s.DatasetId, s => s.End);
            var concurrency = folds.Max(f => folds.Count(g => g.Start <= f.Start && f.Start < g.End));
            var gaps = new List<double>();
            foreach (var gpu in folds.GroupBy(f => f.Gpu))
            {
                var ordered = gpu.OrderBy(f => f.Start).ToList();
                for (var k = 1; k < ordered.Count; k++)
                {
                    var freed = ordered[k - 1].End;
                    // Only when a fold was waiting for this GPU: its preprocessing had ended and it had not started.
                    if (folds.Any(f => ready[f.DatasetId] <= freed && f.Start > freed))
                    {
                        gaps.Add(ordered[k].Start - freed);
                    }
                }
            }
            gaps.Sort();
            var busy = folds.Sum(f => f.End - f.Start);
            var span = folds.Max(f => f.End) - folds.Min(f => f.Start);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{folds.Count} fold jobs of {runIds.Count} runs ({succeeded} succeeded) on 2 GPUs: {watch.Elapsed.TotalSeconds:0.0} s from the first StartTraining "
                + $"to the last run's end ({startCalls.TotalMilliseconds / runIds.Count:0} ms per StartTraining call); the folds' processes ran {busy:0.0} s in all, "
                + $"mean {busy / folds.Count:0.00} s each"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  most fold processes running at once: {concurrency} (GPUs: 2); distinct CUDA_VISIBLE_DEVICES: {string.Join(",", folds.Select(f => f.Gpu).Distinct().Order())}"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  worker overhead per job (a GPU idle between one fold's end and the next fold's start while a fold waited, {gaps.Count} hand-overs): "
                + $"median {Median(gaps) * 1000:0} ms, mean {gaps.Average() * 1000:0} ms, p95 {gaps[(int)(0.95 * (gaps.Count - 1))] * 1000:0} ms, max {gaps[^1] * 1000:0} ms"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  GPU utilisation over the fold phase ({span:0.0} s): {busy / (2 * span) * 100:0.0} %; mean overhead / mean fold = {gaps.Average() / (busy / folds.Count) * 100:0.0} %"));
            if (cluster is null)
            {
                Console.WriteLine("Slurm: not installed (apt-get install slurm-wlm munge), the sbatch figures are left out");
            }
            else
            {
                await MeasureSlurmAsync(cluster, worker.ConnectionString, training, names, snapshots, options.LatencyRuns);
            }
            return concurrency == 2 && folds.Count == 5 * runIds.Count && succeeded == runIds.Count ? 0 : 1;
        }
        finally
        {
            await worker.DisposeAsync();
        }
    }

    /// <summary>StartTraining on the Slurm backend → the preprocessing step's Slurm job id recorded (polled every 2 ms), then the run cancelled.</summary>
    private static async Task MeasureSlurmAsync(SlurmCluster cluster, string connectionString, TrainingService.TrainingServiceClient training,
        List<string> names, List<long> snapshots, int count)
    {
        var bare = new List<double>();
        for (var i = 0; i < count; i++)
        {
            var watch = Stopwatch.StartNew();
            var id = (await cluster.RunAsync("sbatch", ["--parsable", "--hold", "--job-name=bench-bare", "--output=/dev/null", "--wrap=true"])).Trim();
            bare.Add(watch.Elapsed.TotalSeconds);
            await cluster.RunAsync("scancel", [id]);
        }
        var dispatched = new List<double>();
        for (var i = 0; i < count; i++)
        {
            var request = Request(names[i], snapshots[i], "all");
            request.Backend = TrainingBackend.Slurm;
            var watch = Stopwatch.StartNew();
            var run = (await training.StartTrainingAsync(request)).Run;
            while (await ScalarAsync(connectionString, $"SELECT count(*) FROM training_steps WHERE run_id = {run.Id} AND kind = 'preprocess' AND backend_job_id IS NOT NULL") == 0)
            {
                if (watch.Elapsed > TimeSpan.FromMinutes(2))
                {
                    throw new TimeoutException($"run {run.Id} was not submitted to Slurm within 2 minutes");
                }
                await Task.Delay(2);
            }
            dispatched.Add(watch.Elapsed.TotalSeconds);
            await training.CancelTrainingRunAsync(new CancelTrainingRunRequest { Id = run.Id });
        }
        bare.Sort();
        dispatched.Sort();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"StartTraining → preprocessing's sbatch answered and recorded (Slurm, one-node cluster): median {Median(dispatched) * 1000:0} ms, "
            + $"min {dispatched[0] * 1000:0} ms, max {dispatched[^1] * 1000:0} ms over {count} runs; a bare sbatch --parsable of the same cluster: "
            + $"median {Median(bare) * 1000:0} ms; the worker's share (StartTraining's sinfo/scontrol checks, the job lookup by name, the job "
            + $"engine's claim): {(Median(dispatched) - Median(bare)) * 1000:0} ms, {Median(dispatched) / Median(bare):0.0}× a bare sbatch"));
    }

    private static StartTrainingRequest Request(string workflow, long snapshot, params string[] folds) => new()
    {
        Workflow = workflow,
        SnapshotId = snapshot,
        Folds = { folds },
        Backend = TrainingBackend.Local,
        Resources = new TrainingResources { Gpus = 1, Cpus = 1, MemoryMib = 500, TimeLimitSeconds = 600 },
    };

    private static async Task UploadAsync(HttpClient http, DicomFile file)
    {
        using var content = new ByteArrayContent(DicomWriter.ToBytes(file));
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/dicom");
        using var response = await http.PostAsync(new Uri("instances", UriKind.Relative), content);
        response.EnsureSuccessStatusCode();
    }

    private static async Task<double> FirstStartAsync(string stamps, int datasetId)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromMinutes(2))
        {
            if (File.Exists(stamps) && ReadStarts(stamps).FirstOrDefault(s => s.Command == "preprocess" && s.DatasetId == datasetId) is { } found)
            {
                return found.Start;
            }
            await Task.Delay(5);
        }
        throw new TimeoutException($"no nnU-Net process of dataset {datasetId} started within 2 minutes");
    }

    private static IEnumerable<Stamp> ReadStarts(string path) =>
        File.ReadAllLines(path).Where(l => l.StartsWith("start ", StringComparison.Ordinal)).Select(l => Parse(l, double.NaN));

    /// <summary>Pairs each process's start and end lines (same command line, in order).</summary>
    private static List<Stamp> ReadStamps(string path)
    {
        var open = new Dictionary<string, Queue<double>>(StringComparer.Ordinal);
        var result = new List<Stamp>();
        foreach (var line in File.ReadAllLines(path))
        {
            var words = line.Split(' ', 4);
            var key = words[2] + " " + words[3];
            var time = double.Parse(words[1], CultureInfo.InvariantCulture);
            if (words[0] == "start")
            {
                (open.TryGetValue(key, out var queue) ? queue : open[key] = new Queue<double>()).Enqueue(time);
            }
            else if (open.TryGetValue(key, out var queue) && queue.Count > 0)
            {
                result.Add(Parse(line, queue.Dequeue()) with { End = time });
            }
        }
        return result;
    }

    /// <summary>"start|end TIME GPUS COMMAND ARGS…": which command, dataset and fold.</summary>
    private static Stamp Parse(string line, double start)
    {
        var words = line.Split(' ');
        var time = double.Parse(words[1], CultureInfo.InvariantCulture);
        var command = Path.GetFileName(words[3]);
        if (command.Contains("plan_and_preprocess", StringComparison.Ordinal))
        {
            var d = Array.IndexOf(words, "-d");
            return new Stamp("preprocess", int.Parse(words[d + 1], CultureInfo.InvariantCulture), "", words[2], double.IsNaN(start) ? time : start, time);
        }
        return new Stamp("train", int.Parse(words[4], CultureInfo.InvariantCulture), words[6], words[2], double.IsNaN(start) ? time : start, time);
    }

    private static async Task WaitAsync(string connectionString, string sql, long expected, string what, TimeSpan? timeout = null)
    {
        var deadline = Stopwatch.StartNew();
        long count = 0;
        while (deadline.Elapsed < (timeout ?? TimeSpan.FromMinutes(10)))
        {
            count = await ScalarAsync(connectionString, sql);
            if (count >= expected)
            {
                return;
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"waited for {expected} {what}, have {count}");
    }

    private static async Task<long> ScalarAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static double UnixNow() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;

    private static double Median(List<double> sorted) => sorted.Count == 0 ? double.NaN : sorted[sorted.Count / 2];

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";
}
