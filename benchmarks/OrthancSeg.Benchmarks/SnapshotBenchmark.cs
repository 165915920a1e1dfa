using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.Json;
using Grpc.Core;
using Grpc.Net.Client;
using Npgsql;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Dicom;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.Tests.Support;

namespace OrthancSeg.Benchmarks;

/// <summary>
/// `snapshot`: Orthanc → nnU-Net dataset through the worker's export, against Orthanc's own orthanc-neuro plugin and
/// against downloading the series archive and running dcm2niix, on 512×512 int16 CT series of 200 slices; then a
/// snapshot of 20 such series (wall time, DICOM MB/s, peak worker memory). Self-contained: it starts its own
/// PostgreSQL cluster, Orthanc (SQLite index, orthanc-neuro loaded) and the Release worker on free loopback ports,
/// uploads generated series and SEGs, measures once, prints every figure and ratio, and stops what it started.
/// </summary>
internal static class SnapshotBenchmark
{
    private const string NeuroPlugin = "/usr/share/orthanc/plugins/libOrthancNeuro.so";

    public static int Run(string[] args) => RunAsync(Options.Parse(args)).GetAwaiter().GetResult();

    private static async Task<int> RunAsync(Options options)
    {
        var root = Directory.CreateTempSubdirectory("orthancseg-snapshot-bench-").FullName;
        var processes = new List<Process>();
        string? pgData = null;
        try
        {
            Console.WriteLine($"snapshot benchmark: {options.Series} series of {options.Columns}×{options.Rows}×{options.Slices} int16 "
                + $"({Environment.ProcessorCount} cores, load {LoadAverage()}), work directory {root}"
                + (options.WorkerEnvironment.Count == 0 ? "" : $", worker environment {string.Join(' ', options.WorkerEnvironment.Select(e => $"{e.Key}={e.Value}"))}"));
            var worker = FindWorker();

            // PostgreSQL for the worker (as the 'postgres' user when run as root: PostgreSQL refuses root).
            var pgPort = ProcessRunner.FreePort();
            // Beside the work directory, not in it: that one is private (0700) and the 'postgres' user must enter this one.
            pgData = Path.Combine(Path.GetTempPath(), "orthancseg-bench-pg-" + Guid.NewGuid().ToString("N")[..12]);
            Directory.CreateDirectory(pgData);
            if (Environment.UserName == "root")
            {
                await RunAsync("chown", ["postgres:postgres", pgData]);
            }
            var pgBin = Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "initdb"))).OrderDescending().First();
            await AsPostgresAsync(Path.Combine(pgBin, "initdb"), ["-D", Path.Combine(pgData, "data"), "-U", "bench", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"]);
            await AsPostgresAsync(Path.Combine(pgBin, "pg_ctl"), ["-D", Path.Combine(pgData, "data"), "-l", Path.Combine(pgData, "postgres.log"), "-w", "-t", "60", "start",
                "-o", $"-p {pgPort} -c listen_addresses=127.0.0.1 -k {pgData}"]);
            var connectionString = $"Host=127.0.0.1;Port={pgPort};Username=bench;Database=worker";
            await using (var connection = new NpgsqlConnection($"Host=127.0.0.1;Port={pgPort};Username=bench;Database=postgres;Pooling=false"))
            {
                await connection.OpenAsync();
                await using var create = new NpgsqlCommand("CREATE DATABASE worker", connection);
                await create.ExecuteNonQueryAsync();
            }

            // Orthanc with orthanc-neuro, StableAge 2 s so series become cases quickly.
            var orthancPort = ProcessRunner.FreePort();
            var orthancConfig = Path.Combine(root, "orthanc.json");
            await File.WriteAllTextAsync(orthancConfig, JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["Name"] = "snapshot-bench",
                ["StorageDirectory"] = Path.Combine(root, "orthanc"),
                ["IndexDirectory"] = Path.Combine(root, "orthanc"),
                ["HttpPort"] = orthancPort,
                ["DicomPort"] = ProcessRunner.FreePort(),
                ["RemoteAccessAllowed"] = false,
                ["AuthenticationEnabled"] = false,
                ["StableAge"] = 2,
                ["Plugins"] = new[] { NeuroPlugin },
            }));
            processes.Add(Start("/usr/sbin/Orthanc", [orthancConfig], Path.Combine(root, "orthanc.log"), new Dictionary<string, string>()));
            using var orthanc = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{orthancPort}/"), Timeout = TimeSpan.FromMinutes(10) };
            await WaitAsync(async () => (await orthanc.GetAsync(new Uri("system", UriKind.Relative))).IsSuccessStatusCode, "Orthanc");

            // The worker, built in Release.
            var token = Guid.NewGuid().ToString("N");
            var tokenFile = Path.Combine(root, "admin-token");
            await File.WriteAllTextAsync(tokenFile, token);
            await File.WriteAllTextAsync(Path.Combine(root, "bridge-token"), Guid.NewGuid().ToString("N"));
            // The worker refuses secrets others can read.
            await RunAsync("chmod", ["600", tokenFile, Path.Combine(root, "bridge-token")]);
            var workerPort = ProcessRunner.FreePort();
            var rawRoot = Path.Combine(root, "nnUNet_raw");
            var workerEnvironment = new Dictionary<string, string>(options.WorkerEnvironment)
            {
                ["OrthancSeg__Database__ConnectionString"] = connectionString,
                ["OrthancSeg__Orthanc__Url"] = $"http://127.0.0.1:{orthancPort}",
                ["OrthancSeg__Auth__AdminTokenFile"] = tokenFile,
                ["OrthancSeg__Auth__BridgeTokenFile"] = Path.Combine(root, "bridge-token"),
                ["OrthancSeg__Records__CatchUpInterval"] = "00:00:01",
                ["OrthancSeg__Datasets__RawRoot"] = rawRoot,
                ["Kestrel__Endpoints__Grpc__Url"] = $"http://127.0.0.1:{workerPort}",
            };
            var workerProcess = Start("dotnet", [worker], Path.Combine(root, "worker.log"), workerEnvironment);
            processes.Add(workerProcess);
            using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{workerPort}");
            var caseClient = new CaseService.CaseServiceClient(channel);
            var snapshotClient = new SnapshotService.SnapshotServiceClient(channel);
            var systemClient = new SystemService.SystemServiceClient(channel);
            var workflowClient = new WorkflowService.WorkflowServiceClient(channel);
            var headers = new Metadata { { "authorization", $"Bearer {token}" } };
            await WaitAsync(async () =>
            {
                try
                {
                    await systemClient.GetSystemStatusAsync(new GetSystemStatusRequest(), headers, DateTime.UtcNow.AddSeconds(5));
                    return true;
                }
                catch (RpcException)
                {
                    return false;
                }
            }, "the worker");

            foreach (var (name, id, pattern) in new[] { ("bench-one", 901, "^Bench one$"), ("bench-all", 902, "^Bench") })
            {
                await workflowClient.CreateWorkflowAsync(new CreateWorkflowRequest
                {
                    Workflow = new Workflow
                    {
                        Name = name,
                        DatasetId = id,
                        Selection = new SelectionRule { Modality = "CT", SeriesDescriptionPattern = pattern },
                        Labels = { new LabelDefinition { Value = 1, Name = "liver" } },
                    },
                }, headers);
            }

            // Upload: series 0 is the one compared with the other tools; all of them make the big snapshot.
            var upload = Stopwatch.StartNew();
            var series = Enumerable.Range(0, options.Series)
                .Select(i => new TestSeries(options.Slices, options.Rows, options.Columns, spacing: 1.0, description: i == 0 ? "Bench one" : "Bench many"))
                .ToList();
            string? firstSeriesId = null;
            long dicomBytes = 0;
            foreach (var (s, index) in series.Select((s, i) => (s, i)))
            {
                var ids = new string[s.Slices];
                await Parallel.ForEachAsync(s.Files().Select((f, k) => (File: f, Slice: k)), new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (item, ct) =>
                {
                    item.File.Dataset.SetBytes(DicomTags.PixelData, DicomVR.OW, Phantom(s.Rows, s.Columns, item.Slice, index));
                    var bytes = DicomWriter.ToBytes(item.File);
                    Interlocked.Add(ref dicomBytes, bytes.Length);
                    ids[item.Slice] = await PostAsync(orthanc, bytes, ct);
                });
                if (index == 0)
                {
                    using var parent = JsonDocument.Parse(await orthanc.GetStringAsync(new Uri($"instances/{ids[0]}", UriKind.Relative)));
                    firstSeriesId = parent.RootElement.GetProperty("ParentSeries").GetString();
                }
            }
            upload.Stop();
            Console.WriteLine($"uploaded {options.Series * options.Slices} instances ({dicomBytes / 1e6:0} MB) in {upload.Elapsed.TotalSeconds:0.0} s");
            await WaitAsync(async () => await CountCasesAsync(caseClient, headers, "bench-all", CaseStatus.Unspecified) == options.Series, "every series to become a case", TimeSpan.FromMinutes(10));
            foreach (var s in series)
            {
                // A BINARY SEG painting 40 % of the slices, as a label drawn in OHIF would.
                var painted = Enumerable.Range(s.Slices * 3 / 10, s.Slices * 4 / 10).Select(k => new PaintedSlice(k, 1)).ToList();
                await PostAsync(orthanc, DicomWriter.ToBytes(s.Seg([new(1, "liver")], painted)), CancellationToken.None);
            }
            await WaitAsync(async () => await CountCasesAsync(caseClient, headers, "bench-all", CaseStatus.Labeled) == options.Series
                && await CountCasesAsync(caseClient, headers, "bench-one", CaseStatus.Labeled) == 1, "every case to be labelled", TimeSpan.FromMinutes(10));

            // 1. One series, three ways.
            var neuroFile = Path.Combine(root, "neuro.nii.gz");
            var neuro = Stopwatch.StartNew();
            using (var response = await orthanc.GetAsync(new Uri($"series/{firstSeriesId}/nifti?compress", UriKind.Relative), HttpCompletionOption.ResponseHeadersRead))
            {
                response.EnsureSuccessStatusCode();
                await using var file = File.Create(neuroFile);
                await response.Content.CopyToAsync(file);
            }
            neuro.Stop();

            var archiveFile = Path.Combine(root, "series.zip");
            var dicomDir = Path.Combine(root, "archive");
            var niftiDir = Path.Combine(root, "dcm2niix");
            Directory.CreateDirectory(niftiDir);
            var dcm2niix = Stopwatch.StartNew();
            using (var response = await orthanc.GetAsync(new Uri($"series/{firstSeriesId}/archive", UriKind.Relative), HttpCompletionOption.ResponseHeadersRead))
            {
                response.EnsureSuccessStatusCode();
                await using var file = File.Create(archiveFile);
                await response.Content.CopyToAsync(file);
            }
            var downloaded = dcm2niix.Elapsed;
            ZipFile.ExtractToDirectory(archiveFile, dicomDir);
            var extracted = dcm2niix.Elapsed;
            await RunAsync("dcm2niix", ["-z", "y", "-o", niftiDir, "-f", "series", dicomDir]);
            dcm2niix.Stop();

            var ours = await ExportAsync(snapshotClient, headers, "bench-one", workerProcess);
            var oursFile = Directory.GetFiles(Path.Combine(rawRoot, "Dataset901_benchone", "imagesTr")).Single();

            Console.WriteLine();
            Console.WriteLine($"one series ({options.Columns}×{options.Rows}×{options.Slices}, {dicomBytes / options.Series / 1e6:0} MB of DICOM), Orthanc → .nii.gz:");
            Console.WriteLine($"  orthanc-neuro GET /series/{{id}}/nifti?compress     {neuro.Elapsed.TotalSeconds,6:0.00} s  {new FileInfo(neuroFile).Length / 1e6,6:0.0} MB");
            Console.WriteLine($"  /archive + unzip + dcm2niix -z y                   {dcm2niix.Elapsed.TotalSeconds,6:0.00} s  {new FileInfo(Directory.GetFiles(niftiDir, "*.nii.gz").Single()).Length / 1e6,6:0.0} MB"
                + $"  (download {downloaded.TotalSeconds:0.00} s, unzip {(extracted - downloaded).TotalSeconds:0.00} s, dcm2niix {(dcm2niix.Elapsed - extracted).TotalSeconds:0.00} s)");
            Console.WriteLine($"  ours: ExportSnapshot → verified dataset            {ours.Wall.TotalSeconds,6:0.00} s  {new FileInfo(oursFile).Length / 1e6,6:0.0} MB"
                + $"  (worker's own timing {ours.Snapshot.DurationMs / 1000.0:0.00} s, incl. the label and verification)");
            var neuroRatio = neuro.Elapsed / ours.Wall;
            var dcm2niixRatio = dcm2niix.Elapsed / ours.Wall;
            Console.WriteLine($"  ratio orthanc-neuro / ours = {neuroRatio:0.00}× (target ≥ 5×)   {(neuroRatio >= 5 ? "met" : "NOT met")}");
            Console.WriteLine($"  ratio archive+dcm2niix / ours = {dcm2niixRatio:0.00}× (target ≥ 3×)   {(dcm2niixRatio >= 3 ? "met" : "NOT met")}");

            // 2. The whole workflow.
            var all = await ExportAsync(snapshotClient, headers, "bench-all", workerProcess);
            var seconds = all.Wall.TotalSeconds;
            Console.WriteLine();
            Console.WriteLine($"{options.Series}-series snapshot: {all.Snapshot.State}, {all.Snapshot.IncludedCount} cases, verification {(all.Snapshot.Verification?.Passed == true ? "passed" : "FAILED")}");
            Console.WriteLine($"  wall time {seconds:0.0} s (worker's own {all.Snapshot.DurationMs / 1000.0:0.0} s), {all.Snapshot.BytesRead / 1e6:0} MB DICOM read = {all.Snapshot.BytesRead / 1e6 / seconds:0.0} MB/s, "
                + $"{all.Snapshot.BytesWritten / 1e6:0} MB NIfTI written");
            Console.WriteLine($"  worker peak RSS during the export {all.PeakRssBytes / 1048576.0:0} MiB (sampled every 50 ms); VmHWM since start {HighWaterMark(workerProcess) / 1048576.0:0} MiB (target < 1024 MiB)");
            return all.Snapshot.State == SnapshotState.Succeeded && ours.Snapshot.State == SnapshotState.Succeeded ? 0 : 1;
        }
        finally
        {
            foreach (var process in processes.AsEnumerable().Reverse())
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                    await process.WaitForExitAsync();
                }
                process.Dispose();
            }
            if (pgData is not null && Directory.Exists(Path.Combine(pgData, "data")))
            {
                var pgBin = Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "pg_ctl"))).OrderDescending().First();
                await AsPostgresAsync(Path.Combine(pgBin, "pg_ctl"), ["-D", Path.Combine(pgData, "data"), "-m", "immediate", "-w", "stop"]);
            }
            if (pgData is not null && Directory.Exists(pgData))
            {
                Directory.Delete(pgData, recursive: true);
            }
            if (!options.Keep)
            {
                Directory.Delete(root, recursive: true);
            }
        }
    }

    private sealed record Export(Snapshot Snapshot, TimeSpan Wall, long PeakRssBytes);

    /// <summary>Starts an export and follows it to the end, sampling the worker's resident memory meanwhile.</summary>
    private static async Task<Export> ExportAsync(SnapshotService.SnapshotServiceClient snapshotClient, Metadata headers, string workflow, Process worker)
    {
        long peak = 0;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                peak = Math.Max(peak, Rss(worker));
                try
                {
                    await Task.Delay(50, sampling.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        });
        var wall = Stopwatch.StartNew();
        var started = (await snapshotClient.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = workflow }, headers)).Snapshot;
        using (var watch = snapshotClient.WatchSnapshot(new WatchSnapshotRequest { Id = started.Id }, headers))
        {
            await foreach (var _ in watch.ResponseStream.ReadAllAsync())
            {
            }
        }
        wall.Stop();
        await sampling.CancelAsync();
        await sampler;
        var snapshot = (await snapshotClient.GetSnapshotAsync(new GetSnapshotRequest { Id = started.Id }, headers)).Snapshot;
        if (snapshot.State != SnapshotState.Succeeded)
        {
            Console.WriteLine($"snapshot {snapshot.Id} of {workflow} {snapshot.State}: {snapshot.Error}");
        }
        return new Export(snapshot, wall.Elapsed, peak);
    }

    /// <summary>A CT-like slice: air outside an elliptic body, soft tissue with noise inside, int16 little endian.</summary>
    private static byte[] Phantom(int rows, int columns, int slice, int seriesIndex)
    {
        var pixels = new byte[rows * columns * 2];
        var state = (uint)((slice * 7919) + (seriesIndex * 104729) + 1);
        for (var r = 0; r < rows; r++)
        {
            for (var c = 0; c < columns; c++)
            {
                var x = (c - (columns / 2.0)) / (columns * 0.42);
                var y = (r - (rows / 2.0)) / (rows * 0.32);
                short value;
                if ((x * x) + (y * y) > 1)
                {
                    value = -1000;
                }
                else
                {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    value = (short)(40 + (int)(state % 41) - 20 + ((x * x) + (y * y) < 0.15 ? 60 : 0));
                }
                BitConverter.TryWriteBytes(pixels.AsSpan(((r * columns) + c) * 2), value);
            }
        }
        return pixels;
    }

    private static async Task<string> PostAsync(HttpClient orthanc, byte[] bytes, CancellationToken cancellationToken)
    {
        using var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
        using var response = await orthanc.PostAsync(new Uri("instances", UriKind.Relative), content, cancellationToken);
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"Orthanc refused an upload: {(int)response.StatusCode} {body}");
        }
        using var json = JsonDocument.Parse(body);
        return json.RootElement.GetProperty("ID").GetString()!;
    }

    private static async Task<int> CountCasesAsync(CaseService.CaseServiceClient caseClient, Metadata headers, string workflow, CaseStatus status) =>
        (await caseClient.ListCasesAsync(new ListCasesRequest { Workflow = workflow, Status = status, PageSize = 1000 }, headers)).Cases.Count;

    private static long Rss(Process process) => StatusField(process, "VmRSS:");

    private static long HighWaterMark(Process process) => StatusField(process, "VmHWM:");

    private static long StatusField(Process process, string field)
    {
        try
        {
            var line = File.ReadLines($"/proc/{process.Id}/status").FirstOrDefault(l => l.StartsWith(field, StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line[field.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private static string FindWorker()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine(directory.FullName, "worker", "OrthancSeg.Worker", "bin", "Release", "net10.0", "orthancseg-worker.dll");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new InvalidOperationException("Build the worker in Release first: dotnet build OrthancSeg.sln -c Release");
    }

    private static Process Start(string fileName, IEnumerable<string> arguments, string log, IReadOnlyDictionary<string, string> environment)
    {
        var info = new ProcessStartInfo(fileName) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }
        var writer = new StreamWriter(log) { AutoFlush = true };
        var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {fileName}");
        process.OutputDataReceived += (_, e) => Write(writer, e.Data);
        process.ErrorDataReceived += (_, e) => Write(writer, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static void Write(StreamWriter writer, string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (writer)
        {
            writer.WriteLine(line);
        }
    }

    private static Task<string> AsPostgresAsync(string program, string[] arguments) =>
        Environment.UserName == "root" ? RunAsync("runuser", ["-u", "postgres", "--", program, .. arguments]) : RunAsync(program, arguments);

    /// <summary>A tool run to completion from /, failing with its output when it fails.</summary>
    private static Task<string> RunAsync(string fileName, IEnumerable<string> arguments) =>
        ProcessRunner.RunAsync(fileName, arguments, TimeSpan.FromMinutes(10), workingDirectory: "/");

    private static async Task WaitAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(90));
        while (true)
        {
            try
            {
                if (await condition())
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out waiting for {what}");
            }
            await Task.Delay(200);
        }
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";

    private sealed record Options(int Series, int Slices, int Rows, int Columns, bool Keep, IReadOnlyDictionary<string, string> WorkerEnvironment)
    {
        public static Options Parse(string[] args)
        {
            var environment = new Dictionary<string, string>();
            var options = new Options(20, 200, 512, 512, false, environment);
            for (var i = 0; i < args.Length; i++)
            {
                options = args[i] switch
                {
                    "--series" => options with { Series = int.Parse(args[++i], CultureInfo.InvariantCulture) },
                    "--slices" => options with { Slices = int.Parse(args[++i], CultureInfo.InvariantCulture) },
                    "--size" => options with { Rows = int.Parse(args[++i], CultureInfo.InvariantCulture), Columns = int.Parse(args[i], CultureInfo.InvariantCulture) },
                    "--keep" => options with { Keep = true },
                    // e.g. --worker-env OrthancSeg__Datasets__SeriesInFlight=3 or DOTNET_gcServer=0
                    "--worker-env" => Add(options, args[++i]),
                    var other => throw new ArgumentException($"unknown option {other}; use --series N --slices N --size N --keep --worker-env KEY=VALUE"),
                };
            }
            return options;

            Options Add(Options current, string pair)
            {
                var at = pair.IndexOf('=', StringComparison.Ordinal);
                if (at <= 0)
                {
                    throw new ArgumentException($"--worker-env {pair}: use KEY=VALUE");
                }
                environment[pair[..at]] = pair[(at + 1)..];
                return current;
            }
        }
    }
}
