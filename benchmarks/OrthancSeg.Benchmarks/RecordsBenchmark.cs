using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Grpc.Core;
using Grpc.Net.Client;
using Npgsql;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Dicom;
using OrthancSeg.Tests.Support;

namespace OrthancSeg.Benchmarks;

/// <summary>
/// `records`: how fast the worker takes the bridge's events into PostgreSQL, and how fast it catches up on
/// Orthanc's change log. With --url, against a worker that is already up (the stack, or one started by hand);
/// without, on its own PostgreSQL, Orthanc and worker, adding Orthanc's upload time with and without the bridge.
/// See benchmarks/README.md.
/// </summary>
internal static class RecordsBenchmark
{
    public static int Run(string[] args) => RunAsync(Options.Parse(args)).GetAwaiter().GetResult();

    private static async Task<int> RunAsync(Options options)
    {
        if (options.Url is null)
        {
            return await RecordingStack.RunAsync(options);
        }
        if (options.BridgeTokenFile is null || options.Database is null)
        {
            throw new ArgumentException("records: with --url, --bridge-token-file and --database are required too");
        }
        var token = (await File.ReadAllTextAsync(options.BridgeTokenFile)).Trim();
        Console.WriteLine($"records benchmark against {options.Url} ({Environment.ProcessorCount} cores, load {LoadAverage()})");
        var pushed = await MeasurePushesAsync(options.Url, token, options.Database, options.Events, options.Concurrency);
        var watch = new Stopwatch();

        if (options.Orthanc is null)
        {
            return pushed ? 0 : 1;
        }

        // 2. Catch-up: rewind the cursor and time the worker reading the whole change log.
        using var http = new HttpClient { BaseAddress = new Uri(options.Orthanc.TrimEnd('/') + "/") };
        if (options.OrthancUser is not null)
        {
            var password = (await File.ReadAllTextAsync(options.OrthancPasswordFile!)).Trim();
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{options.OrthancUser}:{password}")));
        }
        if (options.PopulateSeries > 0)
        {
            watch.Restart();
            var instances = 0;
            for (var s = 0; s < options.PopulateSeries; s++)
            {
                foreach (var file in new TestSeries(slices: 4, rows: 4, columns: 4, description: "Benchmark").Files())
                {
                    using var content = new ByteArrayContent(DicomWriter.ToBytes(file));
                    content.Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
                    using var response = await http.PostAsync(new Uri("instances", UriKind.Relative), content);
                    response.EnsureSuccessStatusCode();
                    instances++;
                }
            }
            Console.WriteLine($"populate: {instances} instances in {options.PopulateSeries} series uploaded in {watch.Elapsed.TotalSeconds:0.0} s");
        }
        using var last = JsonDocument.Parse(await http.GetStringAsync(new Uri("changes?last", UriKind.Relative)));
        var lastSeq = last.RootElement.GetProperty("Last").GetInt64();
        await ScalarAsync(options.Database, "UPDATE change_cursor SET last_seq = 0 RETURNING 0");
        watch.Restart();
        while (await ScalarAsync(options.Database, "SELECT last_seq FROM change_cursor") < lastSeq)
        {
            await Task.Delay(20);
        }
        watch.Stop();
        var changesRate = lastSeq / watch.Elapsed.TotalSeconds;
        Console.WriteLine($"catch-up: {lastSeq} Orthanc changes read and enqueued in {watch.Elapsed.TotalSeconds:0.00} s = {changesRate:0} changes/s "
            + $"(10,000 changes in {10000 / changesRate:0.0} s; target 10 s) — includes up to one CatchUpInterval of waiting for the worker's next pass");
        return 0;
    }

    /// <summary>
    /// N `NotifyStableSeries` calls (valid, distinct Orthanc ids) with C concurrent calls, then 1,000 of them again;
    /// prints events/s and the jobs added, and says whether every push was recorded once.
    /// </summary>
    internal static async Task<bool> MeasurePushesAsync(string url, string token, string database, int count, int concurrency)
    {
        using var channel = GrpcChannel.ForAddress(url, new GrpcChannelOptions { HttpHandler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true } });
        var events = new Events.EventsClient(channel);
        var headers = new Metadata { { "authorization", $"Bearer {token}" } };

        // Every call is validated and durably enqueued before it answers.
        var jobsBefore = await ScalarAsync(database, "SELECT count(*) FROM jobs WHERE kind = 'series'");
        var prefix = Random.Shared.Next(0x10000000, 0x7fffffff).ToString("x8", CultureInfo.InvariantCulture);
        var next = -1;
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                var id = $"{prefix}-{i:x8}-00000000-00000000-00000000";
                await events.NotifyStableSeriesAsync(new NotifyStableSeriesRequest { OrthancSeriesId = id, ChangeSeq = 0 }, headers);
            }
        }));
        watch.Stop();
        var recorded = await ScalarAsync(database, "SELECT count(*) FROM jobs WHERE kind = 'series'") - jobsBefore;
        var rate = count / watch.Elapsed.TotalSeconds;
        Console.WriteLine($"events: {count} NotifyStableSeries with {concurrency} concurrent calls in {watch.Elapsed.TotalSeconds:0.00} s "
            + $"= {rate:0} events/s ({rate / 1000:0.00}× the 1,000/s target); {recorded} jobs in PostgreSQL");
        // Duplicates: the same pushes again must add nothing.
        var repeats = Math.Min(1000, count);
        for (var i = 0; i < repeats; i++)
        {
            await events.NotifyStableSeriesAsync(new NotifyStableSeriesRequest { OrthancSeriesId = $"{prefix}-{i:x8}-00000000-00000000-00000000" }, headers);
        }
        var afterDuplicates = await ScalarAsync(database, "SELECT count(*) FROM jobs WHERE kind = 'series'") - jobsBefore;
        Console.WriteLine($"duplicates: {repeats} repeated pushes added {afterDuplicates - recorded} jobs");
        return recorded == count && afterDuplicates == recorded && rate >= 1000;
    }

    internal static async Task<long> ScalarAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    internal static string LoadAverage()
    {
        try
        {
            return File.ReadAllText("/proc/loadavg").Split(' ')[0];
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    /// <summary>Without --url, the benchmark starts its own PostgreSQL, Orthanc and worker (see <see cref="RecordingStack"/>).</summary>
    internal sealed record Options(string? Url, string? BridgeTokenFile, string? Database, int Events, int Concurrency,
        string? Orthanc, string? OrthancUser, string? OrthancPasswordFile, int PopulateSeries,
        int Changes, TimeSpan CatchUpInterval, int UploadInstances, int UploadSize, int UploadRounds, int UploadConcurrency)
    {
        public static Options Parse(string[] args)
        {
            var values = new Dictionary<string, string>(StringComparer.Ordinal);
            for (var i = 0; i < args.Length; i += 2)
            {
                if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
                {
                    throw new ArgumentException($"records: expected --option value pairs, got '{args[i]}'");
                }
                values[args[i]] = args[i + 1];
            }
            int Number(string name, int fallback, int minimum) =>
                !values.TryGetValue(name, out var v) ? fallback
                : int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= minimum ? n
                : throw new ArgumentException($"records: {name} must be a whole number ≥ {minimum}, not '{v}'");
            var interval = TimeSpan.FromMilliseconds(Number("--catch-up-interval-ms", 100, 1));
            return new Options(
                values.GetValueOrDefault("--url"), values.GetValueOrDefault("--bridge-token-file"), values.GetValueOrDefault("--database"),
                Number("--events", 20000, 1), Number("--concurrency", 64, 1),
                values.GetValueOrDefault("--orthanc"), values.GetValueOrDefault("--orthanc-user"), values.GetValueOrDefault("--orthanc-password-file"),
                Number("--populate-series", 0, 0),
                Number("--changes", 10000, 1), interval,
                Number("--upload-instances", 200, 1), Number("--upload-size", 512, 8), Number("--upload-rounds", 5, 0), Number("--upload-concurrency", 4, 1));
        }
    }
}
