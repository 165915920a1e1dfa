using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using Npgsql;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Dicom;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.IntegrationTests.Records;
using OrthancSeg.Tests.Support;
using Xunit.Abstractions;

namespace OrthancSeg.IntegrationTests.TwoHosts;

/// <summary>
/// The seed's topology on one machine: the PACS server (Orthanc with the bridge, its PostgreSQL index, nginx's TLS front
/// for the link) in one network namespace, the segmentation server (the worker, its PostgreSQL, the datasets) in another,
/// joined by a veth pair and nothing else. The link's certificates come from the stack's own CA script, Orthanc's
/// configuration and nginx's link block from the stack's renderers; the worker gets the settings make up ROLE=segmentation
/// gives it. Needs root (ip netns).
/// </summary>
public sealed class TwoHostsTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(240);

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "orthancseg-twohosts-" + Guid.NewGuid().ToString("N")[..12]);
    private LinkedHosts _hosts = null!;
    private OrthancServer? _orthanc;
    private LinkProxy? _link;
    private PostgresServer? _segmentationDatabase;
    private WorkerProcess? _worker;

    private string CaFile => _link!.CaFile;

    private string NetrcFile => _link!.NetrcFile;

    private string RawRoot => Path.Combine(_directory, "nnUNet_raw");

    private OrthancServer Orthanc => _orthanc!;

    private WorkerProcess Worker => _worker!;

    public async Task InitializeAsync()
    {
        Assert.True(Environment.UserName == "root", "network namespaces need root");
        Directory.CreateDirectory(_directory);
        // The bridge's gRPC modules are generated, not committed.
        await ProcessRunner.RunAsync(Path.Combine(RepositoryPaths.Root, "plugin-bridge", "generate.sh"), [], TimeSpan.FromSeconds(120));
        _hosts = await LinkedHosts.CreateAsync();

        _link = await LinkProxy.CreateAsync(Path.Combine(_directory, "link"));

        // The PACS side.
        _orthanc = new OrthancServer { Hosts = _hosts, Namespace = _hosts.Pacs, ExtraConfiguration = _link.OrthancConfiguration };
        await _orthanc.InitializeAsync();
        await _link.StartAsync(_hosts, _orthanc.HttpPort);

        // The segmentation side.
        _segmentationDatabase = new PostgresServer { Namespace = _hosts.Segmentation };
        await _segmentationDatabase.InitializeAsync();
        var settings = _link.WorkerSettings(_orthanc.WorkerPort);
        settings["OrthancSeg:Auth:BridgeTokenFile"] = Orthanc.BridgeTokenFile;
        settings["OrthancSeg:Datasets:RawRoot"] = RawRoot;
        settings["OrthancSeg:Jobs:PollInterval"] = "00:00:00.200";
        // Every case and label below must come through the bridge's pushes across the link, not the catch-up.
        settings["OrthancSeg:Records:CatchUpInterval"] = "01:00:00";
        settings["OrthancSeg:Records:NewSeriesCheckDelay"] = "01:00:00";
        _worker = await WorkerProcess.StartAsync(_segmentationDatabase, settings, _hosts, _hosts.Segmentation);
    }

    [Fact]
    public async Task A_series_uploaded_on_the_PACS_side_becomes_a_case_its_SEG_a_label_and_the_export_writes_the_dataset_on_the_segmentation_side()
    {
        using var channel = Worker.CreateChannel();
        var invoker = RecordsHarness.WithToken(channel, Worker.AdminToken);
        var workflows = new WorkflowService.WorkflowServiceClient(invoker);
        var snapshots = new SnapshotService.SnapshotServiceClient(invoker);
        await CreateWorkflowAsync(workflows, "liver-ct", 7, "LiverCT");

        var series = Enumerable.Range(0, 3).Select(_ => new TestSeries(slices: 5, rows: 8, columns: 8)).ToList();
        using var pacs = Orthanc.CreateClient();
        foreach (var s in series)
        {
            foreach (var file in s.Files())
            {
                await UploadAsync(pacs, file);
            }
        }
        await WaitForCountAsync("SELECT count(*) FROM cases", 3, "3 cases on the segmentation side");
        foreach (var s in series)
        {
            await UploadAsync(pacs, s.Seg([new(1, "liver")], [new(1, 1)]));
        }
        await WaitForCountAsync("SELECT count(*) FROM labels WHERE verdict = 'accepted'", 3, "3 accepted labels on the segmentation side");
        // The bridge called the worker across the link (TLS, the bridge token): every series job is one of its pushes.
        Assert.Equal(3, await CountAsync("SELECT count(*) FROM jobs WHERE kind = 'series' AND idempotency_key LIKE '%@push'"));

        var started = (await snapshots.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = "liver-ct" })).Snapshot;
        await FinishedAsync(snapshots, started.Id);
        // Fetched across the link, written on the segmentation side.
        var dataset = Path.Combine(RawRoot, "Dataset007_LiverCT");
        Assert.Equal(3, Directory.GetFiles(Path.Combine(dataset, "imagesTr")).Length);
        Assert.Equal(3, Directory.GetFiles(Path.Combine(dataset, "labelsTr")).Length);
        Assert.True(File.Exists(Path.Combine(dataset, "dataset.json")));
        Assert.Equal(0, await CountAsync("SELECT count(*) FROM dead_letters"));
    }

    [Fact]
    public async Task The_link_is_TLS_only_and_the_workers_Orthanc_account_may_read_and_upload_but_not_delete()
    {
        // The worker's gRPC port on the link: TLS with the link's CA answers; plain HTTP/2 from the PACS side does not.
        var health = Path.Combine(RepositoryPaths.OrthancConfig, "grpc-health.py");
        var workerLink = $"{LinkedHosts.SegmentationAddress}:{Orthanc.WorkerPort}";
        await LinkedHosts.RunInAsync(_hosts.Pacs, "/usr/bin/python3", [health, workerLink, "", "5", CaFile], TimeSpan.FromSeconds(30));
        var plainGrpc = await RunInAsync(_hosts.Pacs, "/usr/bin/python3", [health, workerLink, "", "5"]);
        Assert.NotEqual(0, plainGrpc.ExitCode);
        // Nor does the worker's loopback port exist on the link.
        var loopbackOnly = await RunInAsync(_hosts.Pacs, "/usr/bin/python3", [health, $"{LinkedHosts.SegmentationAddress}:{Worker.Port}", "", "3"]);
        Assert.NotEqual(0, loopbackOnly.ExitCode);

        // Orthanc's link port: plain HTTP is refused by nginx before anything reaches Orthanc.
        var plainHttp = await CurlFromSegmentationAsync(["-o", "/dev/null", "-w", "%{http_code}", $"http://{LinkedHosts.PacsAddress}:{LinkProxy.Port}/system"]);
        Assert.Equal("400", plainHttp.Stdout.Trim());
        // Orthanc's own port answers loopback callers only.
        var direct = await CurlFromSegmentationAsync(["-o", "/dev/null", "-w", "%{http_code}", "--netrc-file", NetrcFile, $"http://{LinkedHosts.PacsAddress}:{Orthanc.HttpPort}/system"]);
        Assert.NotEqual("200", direct.Stdout.Trim());

        var series = new TestSeries(slices: 2, rows: 8, columns: 8);
        using var pacs = Orthanc.CreateClient();
        foreach (var file in series.Files())
        {
            await UploadAsync(pacs, file);
        }
        using var studies = JsonDocument.Parse(await pacs.GetStringAsync(new Uri("studies", UriKind.Relative)));
        var study = studies.RootElement[0].GetString()!;
        var link = LinkProxy.Url;

        // The worker's account over TLS: reads, uploads; a DELETE is 403 and the study stays.
        Assert.Equal("200", (await LinkCurlAsync("GET", $"{link}/studies/{study}")).Trim());
        var upload = Path.Combine(_directory, "upload.dcm");
        await File.WriteAllBytesAsync(upload, DicomWriter.ToBytes(new TestSeries(slices: 1, rows: 8, columns: 8).Files().First()));
        Assert.Equal("200", (await LinkCurlAsync("POST", $"{link}/instances", "--data-binary", "@" + upload)).Trim());
        Assert.Equal("403", (await LinkCurlAsync("DELETE", $"{link}/studies/{study}")).Trim());
        Assert.Equal("403", (await LinkCurlAsync("PUT", $"{link}/studies/{study}/metadata/1024", "--data", "x")).Trim());
        Assert.Equal("403", (await LinkCurlAsync("POST", $"{link}/tools/reset")).Trim());
        using (var still = await pacs.GetAsync(new Uri($"studies/{study}", UriKind.Relative)))
        {
            Assert.True(still.IsSuccessStatusCode, "the study was deleted through the worker's account");
        }
        // Orthanc's administrator cannot be used across the link, whatever its password.
        var adminNetrc = Path.Combine(_directory, "admin.netrc");
        await WorkerProcess.WriteSecretAsync(adminNetrc, $"machine {LinkedHosts.PacsAddress} login {OrthancServer.Username} password {Orthanc.Password}");
        var asAdmin = await CurlFromSegmentationAsync(["-o", "/dev/null", "-w", "%{http_code}", "--cacert", CaFile, "--netrc-file", adminNetrc, $"{link}/system"]);
        Assert.Equal("403", asAdmin.Stdout.Trim());
        // A certificate from another CA is not trusted: the link's CA is the only anchor.
        var otherPki = Path.Combine(_directory, "other-pki");
        await ProcessRunner.RunAsync(Path.Combine(RepositoryPaths.OrthancConfig, "link-certs.sh"), ["ca", otherPki], TimeSpan.FromSeconds(30));
        var otherCa = await CurlFromSegmentationAsync(["-o", "/dev/null", "--cacert", Path.Combine(otherPki, "link-ca.pem"), "--netrc-file", NetrcFile, $"{link}/system"]);
        Assert.NotEqual(0, otherCa.ExitCode);
    }

    [Fact]
    public async Task With_the_link_cut_for_two_minutes_during_uploads_every_series_is_recorded_once_when_it_is_back_and_nothing_is_dead_lettered()
    {
        using var channel = Worker.CreateChannel();
        var workflows = new WorkflowService.WorkflowServiceClient(RecordsHarness.WithToken(channel, Worker.AdminToken));
        await CreateWorkflowAsync(workflows, "ct", 8, "");
        using var pacs = Orthanc.CreateClient();
        var series = Enumerable.Range(0, 12).Select(_ => new TestSeries(slices: 3, rows: 8, columns: 8)).ToList();
        foreach (var file in series[0].Files())
        {
            await UploadAsync(pacs, file);
        }
        await WaitForCountAsync("SELECT count(*) FROM cases", 1, "the first case before the cut");

        await _hosts.CutAsync();
        var cutAt = DateTime.UtcNow;
        // Uploads go on at the PACS while the segmentation server is unreachable: one series every 10 s, some becoming
        // stable (StableAge 2 s) long before the link is back, so the bridge holds them and retries.
        foreach (var s in series.Skip(1))
        {
            foreach (var file in s.Files())
            {
                await UploadAsync(pacs, file);
            }
            await Task.Delay(TimeSpan.FromSeconds(10));
        }
        var rest = TimeSpan.FromMinutes(2) - (DateTime.UtcNow - cutAt);
        if (rest > TimeSpan.Zero)
        {
            await Task.Delay(rest);
        }
        Assert.Equal(1, await CountAsync("SELECT count(*) FROM cases"));
        await _hosts.RestoreAsync();

        await WaitForCountAsync("SELECT count(*) FROM cases", series.Count, $"{series.Count} cases once the link is back");
        await ProcessRunner.WaitUntilAsync(async () => await CountAsync("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running', 'failed')") == 0,
            Patience, "the job queue to drain");
        Assert.Equal(series.Count, await CountAsync("SELECT count(*) FROM cases"));
        Assert.Equal(series.Count, await CountAsync("SELECT count(DISTINCT series_instance_uid) FROM cases"));
        Assert.Equal(0, await CountAsync("SELECT count(*) FROM dead_letters"));
    }

    [Fact]
    public async Task With_the_link_cut_in_the_middle_of_an_export_it_succeeds_with_the_files_of_an_export_without_a_cut_and_leaves_nothing_half_written()
    {
        using var channel = Worker.CreateChannel();
        var invoker = RecordsHarness.WithToken(channel, Worker.AdminToken);
        var workflows = new WorkflowService.WorkflowServiceClient(invoker);
        var snapshots = new SnapshotService.SnapshotServiceClient(invoker);
        await CreateWorkflowAsync(workflows, "cut-ct", 9, "CutCT");
        // 6 series of 20 slices of 256×256 (128 KiB per file, ~16 MB in all): at 8 Mbit/s the export fetches for ~16 s.
        const int slices = 20;
        var series = Enumerable.Range(0, 6).Select(_ => new TestSeries(slices: slices, rows: 256, columns: 256)).ToList();
        using var pacs = Orthanc.CreateClient();
        long dicomBytes = 0;
        foreach (var file in series.SelectMany(s => s.Files()))
        {
            dicomBytes += await UploadAsync(pacs, file);
        }
        await WaitForCountAsync("SELECT count(*) FROM cases", series.Count, $"{series.Count} cases");
        foreach (var s in series)
        {
            dicomBytes += await UploadAsync(pacs, s.Seg([new(1, "liver")], [new(1, 1), new(slices / 2, 1)]));
        }
        await WaitForCountAsync("SELECT count(*) FROM labels WHERE verdict = 'accepted'", series.Count, $"{series.Count} accepted labels");
        var dataset = Path.Combine(RawRoot, "Dataset009_CutCT");

        // The reference: the same export, the link up all along.
        var reference = await FinishedAsync(snapshots, (await snapshots.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = "cut-ct" })).Snapshot.Id);
        // Its transfer figures: every instance and SEG once, byte for byte as uploaded, over a fetch time within the export's.
        Assert.Equal(series.Count * (slices + 1), reference.InstancesRead);
        Assert.Equal(dicomBytes, reference.BytesRead);
        Assert.InRange(reference.FetchMs, 1, reference.DurationMs);
        var referenceFiles = CaseFileHashes(dataset);
        Assert.Equal(2 * series.Count, referenceFiles.Count);
        // Moved away, so that the next export fetches every case again instead of taking the reference's files over.
        Directory.Move(dataset, Path.Combine(_directory, "reference"));

        await _hosts.ThrottleAsync("8mbit");
        var started = (await snapshots.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = "cut-ct" })).Snapshot;
        Snapshot? before = null;
        await ProcessRunner.WaitUntilAsync(async () =>
        {
            before = (await snapshots.GetSnapshotAsync(new GetSnapshotRequest { Id = started.Id })).Snapshot;
            return before.BytesRead > 0 || before.State is not (SnapshotState.Queued or SnapshotState.Running);
        }, Patience, "the export to have read its first case");
        Assert.True(before!.State == SnapshotState.Running && before.CasesDone < before.CasesTotal,
            $"the export was {before.State} with {before.CasesDone}/{before.CasesTotal} cases done before the link could be cut");
        await _hosts.CutAsync();
        // The cable stays out for 80 s: longer than a file's RequestTimeout (60 s) and its retries, so the export is handed back.
        await Task.Delay(TimeSpan.FromSeconds(80));
        var during = (await snapshots.GetSnapshotAsync(new GetSnapshotRequest { Id = started.Id })).Snapshot;
        Assert.NotEqual(SnapshotState.Succeeded, during.State);
        await _hosts.RestoreAsync();

        var cut = await FinishedAsync(snapshots, started.Id);
        Assert.Equal(0, await CountAsync("SELECT count(*) FROM dead_letters"));
        // The cut outlasted the files' retries, so the job was handed back, and that spent no attempt: the outage was waited out.
        var waits = await CountAsync($"SELECT waits FROM jobs WHERE id = {cut.JobId}");
        Assert.True(waits >= 1, "the export was never handed back: the cut did not reach it\n" + Worker.Output);
        Assert.Equal(1, await CountAsync($"SELECT attempts FROM jobs WHERE id = {cut.JobId}"));
        Assert.Equal(0, cut.ReusedCount);
        Assert.Equal(series.Count, cut.IncludedCount);
        // Every case file whole and equal to the reference's, and nothing else: no scratch folder, no partial file.
        Assert.Equal(referenceFiles, CaseFileHashes(dataset));
        Assert.Equal(new[] { dataset }, Directory.GetFileSystemEntries(RawRoot));
        Assert.Equal(new[] { "dataset.json", "imagesTr", "labelsTr" }, Directory.GetFileSystemEntries(dataset).Select(e => Path.GetFileName(e)).Order(StringComparer.Ordinal));
        Assert.Equal(reference.Cases.Select(c => (c.CaseKey, c.ImageSha256, c.LabelSha256)).Order(), cut.Cases.Select(c => (c.CaseKey, c.ImageSha256, c.LabelSha256)).Order());
        // The successful attempt's transfer, across the throttled link: all of it again, at no more than 8 Mbit/s.
        Assert.Equal(reference.InstancesRead, cut.InstancesRead);
        Assert.Equal(dicomBytes, cut.BytesRead);
        Assert.InRange(cut.BytesRead * 8.0 / 1e3 / cut.FetchMs, 0.5, 8.5);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"job {cut.JobId}: {waits} hand-back(s); export {cut.DurationMs} ms after its last start"));
        foreach (var (name, s) in new[] { ("reference", reference), ("after the cut", cut) })
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{name}: fetched {s.BytesRead} bytes ({s.InstancesRead} instances) in {s.FetchMs} ms, {s.BytesRead / 1e3 / s.FetchMs:0.0} MB/s, {s.InstancesRead * 1e3 / s.FetchMs:0.0} instances/s"));
        }
        output.WriteLine($"worker {Worker.ProcessId}: {string.Join(", ", File.ReadLines($"/proc/{Worker.ProcessId}/status").Where(l => l.StartsWith("Vm", StringComparison.Ordinal) && (l.Contains("HWM") || l.Contains("RSS"))))}");
    }

    /// <summary>A workflow of every CT series with one label, "liver".</summary>
    private static async Task CreateWorkflowAsync(WorkflowService.WorkflowServiceClient workflows, string name, int datasetId, string datasetName) =>
        await workflows.CreateWorkflowAsync(new CreateWorkflowRequest
        {
            Workflow = new Workflow
            {
                Name = name, DatasetId = datasetId, DatasetName = datasetName, Selection = new SelectionRule { Modality = "CT" },
                Labels = { new LabelDefinition { Value = 1, Name = "liver" } },
            },
        });

    /// <summary>Waits for the snapshot to end and asserts that it succeeded.</summary>
    private async Task<Snapshot> FinishedAsync(SnapshotService.SnapshotServiceClient snapshots, long id)
    {
        Snapshot? snapshot = null;
        await ProcessRunner.WaitUntilAsync(async () =>
        {
            snapshot = (await snapshots.GetSnapshotAsync(new GetSnapshotRequest { Id = id })).Snapshot;
            return snapshot.State is SnapshotState.Succeeded or SnapshotState.Failed or SnapshotState.Cancelled;
        }, Patience, $"snapshot {id} to finish");
        Assert.True(snapshot!.State == SnapshotState.Succeeded, snapshot.Error + "\n" + Worker.Output);
        return snapshot;
    }

    /// <summary>SHA-256 of every file of imagesTr and labelsTr, by relative path.</summary>
    private static SortedDictionary<string, string> CaseFileHashes(string dataset) => new(
        Directory.GetFiles(dataset, "*.nii.gz", SearchOption.AllDirectories).ToDictionary(
            f => Path.GetRelativePath(dataset, f), f => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(f)))),
        StringComparer.Ordinal);

    private async Task<string> LinkCurlAsync(string method, string url, params string[] more)
    {
        var result = await CurlFromSegmentationAsync(["-o", "/dev/null", "-w", "%{http_code}", "--cacert", CaFile, "--netrc-file", NetrcFile, "-X", method, .. more, url]);
        return result.Stdout;
    }

    private Task<(int ExitCode, string Stdout)> CurlFromSegmentationAsync(string[] arguments) =>
        RunInAsync(_hosts.Segmentation, "curl", ["-s", "--max-time", "10", .. arguments]);

    private static async Task<(int ExitCode, string Stdout)> RunInAsync(string ns, string program, string[] arguments)
    {
        var (ip, ipArguments) = LinkedHosts.Command(ns, program, arguments);
        var info = new System.Diagnostics.ProcessStartInfo(ip) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in ipArguments)
        {
            info.ArgumentList.Add(argument);
        }
        using var process = System.Diagnostics.Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(cts.Token);
        _ = await stderr;
        return (process.ExitCode, await stdout);
    }

    /// <summary>Uploads one file to Orthanc; returns its size.</summary>
    private static async Task<long> UploadAsync(HttpClient http, DicomFile file)
    {
        var bytes = DicomWriter.ToBytes(file);
        using var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
        using var response = await http.PostAsync(new Uri("instances", UriKind.Relative), content);
        Assert.True(response.IsSuccessStatusCode, $"Orthanc refused an upload: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        return bytes.Length;
    }

    private async Task<long> CountAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(_segmentationDatabase!.ForTest(Worker.ConnectionString));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    private async Task WaitForCountAsync(string sql, long expected, string what)
    {
        try
        {
            await ProcessRunner.WaitUntilAsync(async () => await CountAsync(sql) >= expected, Patience, what);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message} (count is {await CountAsync(sql)})\n--- worker ---\n{Worker.Output[^Math.Min(6000, Worker.Output.Length)..]}\n--- orthanc ---\n{Orthanc.LogTail()}", e);
        }
    }

    public async Task DisposeAsync()
    {
        if (_worker is not null)
        {
            await _worker.DisposeAsync();
        }
        if (_segmentationDatabase is not null)
        {
            await _segmentationDatabase.DisposeAsync();
        }
        if (_link is not null)
        {
            await _link.DisposeAsync();
        }
        if (_orthanc is not null)
        {
            await _orthanc.DisposeAsync();
        }
        if (_hosts is not null)
        {
            await _hosts.DisposeAsync();
        }
        Directory.Delete(_directory, recursive: true);
    }
}
