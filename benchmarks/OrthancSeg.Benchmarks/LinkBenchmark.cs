using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Npgsql;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Dicom;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.Tests.Support;

namespace OrthancSeg.Benchmarks;

/// <summary>
/// `link`: export throughput across the link between two machines against the same export on one machine (issue 13).
/// Two network namespaces joined by a veth pair (<see cref="LinkedHosts"/>): the PACS side runs Orthanc with the bridge and
/// its PostgreSQL index, and nginx's TLS front (<see cref="LinkProxy"/>). Two workers record the same series: one on the
/// segmentation side, reaching Orthanc over HTTPS with its own account as make up ROLE=segmentation configures it, and one
/// beside Orthanc on the PACS side, reaching it on loopback as the one-machine stack does. Each exports the same labelled
/// cases twice (two workflows, in alternating order), timed from ExportSnapshot until the snapshot has succeeded. Root only.
/// </summary>
internal static class LinkBenchmark
{
    public static int Run(string[] args) => RunAsync(Options.Parse(args)).GetAwaiter().GetResult();

    private static async Task<int> RunAsync(Options options)
    {
        if (Environment.UserName != "root")
        {
            Console.Error.WriteLine("link: network namespaces need root");
            return 2;
        }
        var root = Directory.CreateTempSubdirectory("orthancseg-link-bench-").FullName;
        Console.WriteLine($"link benchmark: {options.Series} series of {options.Size}×{options.Size}×{options.Slices} int16 ({Environment.ProcessorCount} cores, load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}), work directory {root}");
        await ProcessRunner.RunAsync(Path.Combine(RepositoryPaths.Root, "plugin-bridge", "generate.sh"), [], TimeSpan.FromSeconds(120));
        await using var hosts = await LinkedHosts.CreateAsync();
        await using var link = await LinkProxy.CreateAsync(Path.Combine(root, "link"));
        var orthanc = new OrthancServer { Hosts = hosts, Namespace = hosts.Pacs, ExtraConfiguration = link.OrthancConfiguration };
        var segmentationDatabase = new PostgresServer { Namespace = hosts.Segmentation };
        WorkerProcess? remote = null;
        WorkerProcess? local = null;
        try
        {
            await orthanc.InitializeAsync();
            await link.StartAsync(hosts, orthanc.HttpPort);
            await segmentationDatabase.InitializeAsync();
            var common = new Dictionary<string, string>
            {
                ["OrthancSeg:Auth:BridgeTokenFile"] = orthanc.BridgeTokenFile,
                ["OrthancSeg:Records:CatchUpInterval"] = "00:00:01",
                ["OrthancSeg:Jobs:PollInterval"] = "00:00:00.200",
                ["Serilog:MinimumLevel:Default"] = "Warning",
            };
            var remoteSettings = new Dictionary<string, string>(link.WorkerSettings(orthanc.WorkerPort).Concat(common))
            {
                ["OrthancSeg:Datasets:RawRoot"] = Path.Combine(root, "raw-link"),
            };
            remote = await WorkerProcess.StartAsync(segmentationDatabase, remoteSettings, hosts, hosts.Segmentation);
            var localSettings = new Dictionary<string, string>(common)
            {
                ["OrthancSeg:Orthanc:Url"] = orthanc.BaseUrl.ToString(),
                ["OrthancSeg:Orthanc:Username"] = OrthancServer.Username,
                ["OrthancSeg:Orthanc:PasswordFile"] = orthanc.PasswordFile,
                ["OrthancSeg:Datasets:RawRoot"] = Path.Combine(root, "raw-local"),
            };
            local = await WorkerProcess.StartAsync(orthanc.Postgres, localSettings, hosts, hosts.Pacs);
            var workers = new[] { ("across the link", remote, segmentationDatabase), ("one machine", local, orthanc.Postgres) };

            foreach (var (_, worker, _) in workers)
            {
                var workflows = new WorkflowService.WorkflowServiceClient(InvokerOf(worker));
                foreach (var (name, id) in new[] { ("bench-a", 901), ("bench-b", 902) })
                {
                    await workflows.CreateWorkflowAsync(new CreateWorkflowRequest
                    {
                        Workflow = new Workflow { Name = name, DatasetId = id, DatasetName = "Bench", Selection = new SelectionRule { Modality = "CT" }, Labels = { new LabelDefinition { Value = 1, Name = "liver" } } },
                    });
                }
            }

            var series = Enumerable.Range(0, options.Series).Select(_ => new TestSeries(slices: options.Slices, rows: options.Size, columns: options.Size)).ToList();
            long dicomBytes = 0;
            using (var pacs = orthanc.CreateClient())
            {
                pacs.Timeout = TimeSpan.FromMinutes(5);
                foreach (var s in series)
                {
                    foreach (var file in s.Files())
                    {
                        var bytes = DicomWriter.ToBytes(file);
                        dicomBytes += bytes.Length;
                        await UploadAsync(pacs, bytes);
                    }
                }
                foreach (var s in series)
                {
                    await UploadAsync(pacs, DicomWriter.ToBytes(s.Seg([new(1, "liver")], [new(1, 1)])));
                }
            }
            foreach (var (name, worker, database) in workers)
            {
                await ProcessRunner.WaitUntilAsync(async () => await CountAsync(database, worker, "SELECT count(*) FROM cases WHERE status = 'labeled'") >= 2 * options.Series,
                    TimeSpan.FromMinutes(10), $"{2 * options.Series} labelled cases ({name})");
            }
            Console.WriteLine($"uploaded {dicomBytes / 1e6:F0} MB of DICOM; both workers recorded {options.Series} labelled cases per workflow");

            var times = workers.ToDictionary(w => w.Item1, _ => new List<double>());
            foreach (var (workflow, order) in new[] { ("bench-a", new[] { 0, 1 }), ("bench-b", new[] { 1, 0 }) })
            {
                foreach (var index in order)
                {
                    var (name, worker, _) = workers[index];
                    var (seconds, snapshot) = await ExportAsync(new SnapshotService.SnapshotServiceClient(InvokerOf(worker)), workflow);
                    times[name].Add(seconds);
                    // The snapshot's own transfer figures: the fetch from Orthanc alone, without the conversion and writing.
                    Console.WriteLine($"  {workflow} {name,-16} {seconds,7:F1} s  {dicomBytes / 1e6 / seconds,6:F1} MB/s of DICOM; fetched {snapshot.InstancesRead} instances in {snapshot.FetchMs / 1e3:F1} s, {snapshot.BytesRead / 1e3 / snapshot.FetchMs:F1} MB/s, {snapshot.InstancesRead * 1e3 / snapshot.FetchMs:F0} instances/s");
                }
            }
            var acrossLink = times["across the link"].Average();
            var oneMachine = times["one machine"].Average();
            foreach (var (name, worker, _) in workers)
            {
                // Memory stays bounded by SeriesInFlight, not by the dataset's size (docs/operations.md, "Dataset snapshots").
                var peak = File.ReadLines($"/proc/{worker.ProcessId}/status").Single(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
                Console.WriteLine($"worker {name}: peak RSS {long.Parse(peak.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024} MiB for {dicomBytes / 1e6:F0} MB of DICOM exported twice");
            }
            Console.WriteLine($"mean: across the link {acrossLink:F1} s ({dicomBytes / 1e6 / acrossLink:F1} MB/s), one machine {oneMachine:F1} s ({dicomBytes / 1e6 / oneMachine:F1} MB/s); ratio {acrossLink / oneMachine:F2}× (goal ≤ 1.3×)");
            return 0;
        }
        finally
        {
            if (remote is not null)
            {
                await remote.DisposeAsync();
            }
            if (local is not null)
            {
                await local.DisposeAsync();
            }
            await segmentationDatabase.DisposeAsync();
            await orthanc.DisposeAsync();
            Directory.Delete(root, recursive: true);
        }
    }

    private static CallInvoker InvokerOf(WorkerProcess worker) =>
        worker.CreateChannel().Intercept(metadata =>
        {
            metadata.Add("authorization", $"Bearer {worker.AdminToken}");
            return metadata;
        });

    private static async Task<(double Seconds, Snapshot Snapshot)> ExportAsync(SnapshotService.SnapshotServiceClient snapshots, string workflow)
    {
        var clock = Stopwatch.StartNew();
        var started = (await snapshots.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = workflow })).Snapshot;
        Snapshot snapshot;
        while (true)
        {
            snapshot = (await snapshots.GetSnapshotAsync(new GetSnapshotRequest { Id = started.Id })).Snapshot;
            if (snapshot.State is SnapshotState.Succeeded or SnapshotState.Failed)
            {
                break;
            }
            await Task.Delay(100);
        }
        clock.Stop();
        if (snapshot.State != SnapshotState.Succeeded)
        {
            throw new InvalidOperationException($"the export of {workflow} failed: {snapshot.Error}");
        }
        return (clock.Elapsed.TotalSeconds, snapshot);
    }

    private static async Task UploadAsync(HttpClient pacs, byte[] part10)
    {
        using var content = new ByteArrayContent(part10);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
        using var response = await pacs.PostAsync(new Uri("instances", UriKind.Relative), content);
        response.EnsureSuccessStatusCode();
    }

    private static async Task<long> CountAsync(PostgresServer server, WorkerProcess worker, string sql)
    {
        await using var connection = new NpgsqlConnection(server.ForTest(worker.ConnectionString));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    private sealed record Options(int Series, int Slices, int Size)
    {
        public static Options Parse(string[] args)
        {
            var options = new Options(6, 100, 512);
            for (var i = 0; i < args.Length; i++)
            {
                var value = i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : throw new ArgumentException($"{args[i]} needs a number");
                options = args[i] switch
                {
                    "--series" => options with { Series = value },
                    "--slices" => options with { Slices = value },
                    "--size" => options with { Size = value },
                    _ => throw new ArgumentException($"unknown option {args[i]}; known: --series N --slices N --size N"),
                };
                i++;
            }
            return options;
        }
    }
}
