using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using OrthancSeg.Dicom;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.Tests.Support;

namespace OrthancSeg.Benchmarks;

/// <summary>
/// `records` with no --url: everything issue 4's speed section promises, measured on processes this run starts
/// (the integration tests' fixtures: a throwaway PostgreSQL cluster, Orthanc rendered from the stack's template,
/// the built worker) and stops again, so it needs no `make up` and leaves nothing running.
/// </summary>
internal static class RecordingStack
{
    /// <summary>Uploads made again after Orthanc's PostgreSQL index answered 503 "should be retried" (concurrent writers).</summary>
    private static int s_retries;

    public static async Task<int> RunAsync(RecordsBenchmark.Options options)
    {
        CheckPrerequisites();
        Console.WriteLine($"records benchmark, self-contained ({Environment.ProcessorCount} cores, load {RecordsBenchmark.LoadAverage()})");
        var ok = true;

        // 1 and 2: an Orthanc holding ≥ N changes whose bridge pushes go to a port where nothing listens, so
        // the worker learns about them only from /changes; then pushes straight to the worker's Events service.
        await using (var orthanc = new OrthancServer())
        {
            await orthanc.InitializeAsync();
            using var http = orthanc.CreateClient();
            var lastSeq = await PopulateAsync(http, options.Changes, options.UploadConcurrency);

            var start = Stopwatch.StartNew();
            var worker = await WorkerProcess.StartAsync(orthanc.Postgres, new Dictionary<string, string>
            {
                ["OrthancSeg:Orthanc:Url"] = orthanc.BaseUrl.ToString().TrimEnd('/'),
                ["OrthancSeg:Orthanc:Username"] = OrthancServer.Username,
                ["OrthancSeg:Orthanc:PasswordFile"] = orthanc.PasswordFile,
                // Small, so the timed pass starts at once instead of after the default 30 s period.
                ["OrthancSeg:Records:CatchUpInterval"] = options.CatchUpInterval.ToString("c", CultureInfo.InvariantCulture),
                ["Serilog:MinimumLevel:Default"] = "Information",
            });
            try
            {
                await WaitForCursorAsync(worker.ConnectionString, lastSeq, TimeSpan.FromMinutes(5));
                Console.WriteLine($"catch-up, fresh database: cursor at {lastSeq} {start.Elapsed.TotalSeconds:0.00} s after starting the worker process (includes .NET start-up and migrations)");

                // Let the series jobs that pass enqueued finish, so the timed pass competes with nothing of ours.
                await WaitForIdleJobsAsync(worker.ConnectionString, TimeSpan.FromMinutes(5));
                await RecordsBenchmark.ScalarAsync(worker.ConnectionString, "UPDATE change_cursor SET last_seq = 0 RETURNING 0");
                var watch = Stopwatch.StartNew();
                await WaitForCursorAsync(worker.ConnectionString, lastSeq, TimeSpan.FromMinutes(5));
                watch.Stop();
                Console.WriteLine($"catch-up: {lastSeq:N0} Orthanc changes read and enqueued in {watch.Elapsed.TotalSeconds:0.00} s "
                    + $"(target: 10,000 in < 10 s; {(lastSeq >= 10000 ? $"{10 / watch.Elapsed.TotalSeconds:0.00}× under it" : "FEWER than 10,000 changes: not the target's size")}); "
                    + $"includes up to one CatchUpInterval ({options.CatchUpInterval.TotalSeconds:0.0} s) before the worker's next pass");
                ok &= lastSeq >= 10000 && watch.Elapsed < TimeSpan.FromSeconds(10);

                var token = (await File.ReadAllTextAsync(worker.BridgeTokenFile)).Trim();
                ok &= await RecordsBenchmark.MeasurePushesAsync(worker.Address, token, worker.ConnectionString, options.Events, options.Concurrency);
            }
            finally
            {
                await worker.DisposeAsync();
            }
        }

        // 3: Orthanc with the bridge loaded and its worker unreachable vs Orthanc with the Python plugin idle.
        if (options.UploadRounds > 0)
        {
            ok &= await MeasureUploadSlowdownAsync(options);
        }
        return ok ? 0 : 1;
    }

    private static void CheckPrerequisites()
    {
        var missing = new List<string>();
        if (!File.Exists("/usr/sbin/Orthanc"))
        {
            missing.Add("Orthanc (/usr/sbin/Orthanc): apt-get install orthanc orthanc-python orthanc-postgresql orthanc-dicomweb orthanc-gdcm");
        }
        if (!Directory.Exists(Path.Combine(RepositoryPaths.Root, "plugin-bridge", "generated", "orthancseg")))
        {
            missing.Add("the bridge's generated gRPC modules: run plugin-bridge/generate.sh");
        }
        if (!File.Exists("/usr/bin/python3"))
        {
            missing.Add("/usr/bin/python3 with pydicom and numpy (apt-get install python3-pydicom python3-numpy) for the CT slices");
        }
        try
        {
            _ = PostgresServer.BinDirectory;
            _ = BuildOutput.WorkerAssembly;
        }
        catch (InvalidOperationException exception)
        {
            missing.Add(exception.Message);
        }
        if (missing.Count > 0)
        {
            throw new InvalidOperationException("records: cannot start its own stack; missing:\n  " + string.Join("\n  ", missing));
        }
    }

    /// <summary>
    /// Uploads one-slice series (each a new patient, study and series: NewPatient, NewStudy, NewSeries, NewInstance,
    /// then StableSeries, StableStudy, StablePatient) until Orthanc's change log holds at least <paramref name="target"/>
    /// changes and has stopped growing; returns the last seq.
    /// </summary>
    private static async Task<long> PopulateAsync(HttpClient http, int target, int concurrency)
    {
        var watch = Stopwatch.StartNew();
        var uploaded = 0;
        long last;
        while ((last = await LastChangeAsync(http)) < target)
        {
            // Seven changes per upload once its series is stable; aim a little under so the loop tops up.
            var batch = Math.Max(concurrency, (int)((target - last) / 7));
            var next = -1;
            await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
            {
                while (Interlocked.Increment(ref next) < batch)
                {
                    var file = new TestSeries(slices: 1, rows: 4, columns: 4, description: "Benchmark").Files().Single();
                    await PostAsync(http, DicomWriter.ToBytes(file));
                }
            }));
            uploaded += batch;
            last = await WaitUntilQuietAsync(http);
        }
        Console.WriteLine($"populate: {uploaded:N0} one-slice series uploaded in {watch.Elapsed.TotalSeconds:0.0} s ({Interlocked.Exchange(ref s_retries, 0)} retried after a 503); Orthanc's /changes?last = {last:N0}");
        return last;
    }

    /// <summary>Waits until the change log has not grown for longer than Orthanc's StableAge (2 s in the fixture).</summary>
    private static async Task<long> WaitUntilQuietAsync(HttpClient http)
    {
        var last = await LastChangeAsync(http);
        var since = Stopwatch.StartNew();
        var deadline = Stopwatch.StartNew();
        while (since.Elapsed < TimeSpan.FromSeconds(4))
        {
            if (deadline.Elapsed > TimeSpan.FromMinutes(2))
            {
                throw new TimeoutException("Orthanc's change log kept growing for 2 minutes after the uploads");
            }
            await Task.Delay(250);
            var now = await LastChangeAsync(http);
            if (now != last)
            {
                (last, since) = (now, Stopwatch.StartNew());
            }
        }
        return last;
    }

    private static async Task<long> LastChangeAsync(HttpClient http)
    {
        using var json = JsonDocument.Parse(await http.GetStringAsync(new Uri("changes?last", UriKind.Relative)));
        return json.RootElement.GetProperty("Last").GetInt64();
    }

    private static async Task PostAsync(HttpClient http, byte[] bytes)
    {
        for (var attempt = 1; ; attempt++)
        {
            using var content = new ByteArrayContent(bytes);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
            using var response = await http.PostAsync(new Uri("instances", UriKind.Relative), content);
            var body = await response.Content.ReadAsStringAsync();
            if (response.StatusCode == HttpStatusCode.ServiceUnavailable && body.Contains("should be retried", StringComparison.Ordinal) && attempt < 20)
            {
                // Orthanc's PostgreSQL index runs uploads in serializable transactions and asks the client to retry
                // a conflicting one: what any uploader (storescu aside) must do, so it is part of the time measured.
                Interlocked.Increment(ref s_retries);
                continue;
            }
            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException($"Orthanc refused an upload: {(int)response.StatusCode} {body}");
            }
            using var json = JsonDocument.Parse(body);
            var status = json.RootElement.GetProperty("Status").GetString();
            if (status != "Success")
            {
                // AlreadyStored would time a lookup, not a store: every round must upload new instances.
                throw new InvalidOperationException($"Orthanc answered {status} instead of Success: the benchmark must upload new instances");
            }
            return;
        }
    }

    private static async Task WaitForCursorAsync(string database, long lastSeq, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (await RecordsBenchmark.ScalarAsync(database, "SELECT last_seq FROM change_cursor") < lastSeq)
        {
            if (deadline.Elapsed > timeout)
            {
                throw new TimeoutException($"The worker's change cursor did not reach {lastSeq} within {timeout}");
            }
            await Task.Delay(10);
        }
    }

    private static async Task WaitForIdleJobsAsync(string database, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        long pending;
        while ((pending = await RecordsBenchmark.ScalarAsync(database, "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running') AND not_before <= now()")) > 0)
        {
            if (deadline.Elapsed > timeout)
            {
                Console.WriteLine($"  ({pending} jobs still due after {timeout}; the timed pass competes with them)");
                return;
            }
            await Task.Delay(200);
        }
    }

    private static async Task<bool> MeasureUploadSlowdownAsync(RecordsBenchmark.Options options)
    {
        await using var bridged = new OrthancServer();
        await using var plain = new OrthancServer { LoadBridge = false };
        await bridged.InitializeAsync();
        await plain.InitializeAsync();
        using var bridgedHttp = bridged.CreateClient();
        using var plainHttp = plain.CreateClient();

        Console.WriteLine($"upload: {options.UploadInstances} CT slices of {options.UploadSize}×{options.UploadSize} per round, {options.UploadConcurrency} concurrent uploads, "
            + $"{options.UploadRounds} rounds each, alternating; bridge's worker port {bridged.WorkerPort} has no listener");
        var bridgedTimes = new List<double>();
        var plainTimes = new List<double>();
        for (var round = 0; round < options.UploadRounds; round++)
        {
            // New UIDs every round, the same bytes for both Orthancs (each stores them once).
            using var series = await CtSeries.CreateAsync(options.UploadInstances, options.UploadSize);
            var files = await Task.WhenAll(series.Files.Select(f => File.ReadAllBytesAsync(f)));
            var order = round % 2 == 0 ? new[] { (bridgedHttp, bridgedTimes), (plainHttp, plainTimes) } : [(plainHttp, plainTimes), (bridgedHttp, bridgedTimes)];
            var retries = new Dictionary<HttpClient, int>();
            foreach (var (http, times) in order)
            {
                times.Add(await UploadAllAsync(http, files, options.UploadConcurrency));
                retries[http] = Interlocked.Exchange(ref s_retries, 0);
            }
            Console.WriteLine($"  round {round + 1}: bridge, worker unreachable {bridgedTimes[^1]:0.00} s ({retries[bridgedHttp]} retries); "
                + $"no bridge {plainTimes[^1]:0.00} s ({retries[plainHttp]} retries); {files.Sum(f => (long)f.Length) / 1e6:0.0} MB");
        }
        var withBridge = Median(bridgedTimes);
        var without = Median(plainTimes);
        var ratio = withBridge / without;
        var tail = bridged.LogTail();
        Console.WriteLine($"upload: median {withBridge:0.00} s with the bridge and its worker unreachable, {without:0.00} s without the bridge; "
            + $"ratio {ratio:0.000} (target ≤ 1.2×)");
        Console.WriteLine($"  bridge {(tail.Contains("OrthancSeg:", StringComparison.Ordinal) ? "logged in Orthanc's log tail: " + LastBridgeLine(tail) : "said nothing in the last lines of Orthanc's log")}");
        return ratio <= 1.2;
    }

    private static string LastBridgeLine(string log) =>
        log.Split('\n').Last(l => l.Contains("OrthancSeg:", StringComparison.Ordinal)).Trim();

    private static async Task<double> UploadAllAsync(HttpClient http, byte[][] files, int concurrency)
    {
        var next = -1;
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < files.Length)
            {
                await PostAsync(http, files[i]);
            }
        }));
        return watch.Elapsed.TotalSeconds;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
