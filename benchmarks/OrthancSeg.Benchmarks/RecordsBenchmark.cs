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
/// Orthanc's change log. Runs against a worker that is already up (the stack, or one started by hand);
/// see benchmarks/README.md for the settings it expects.
/// </summary>
internal static class RecordsBenchmark
{
    public static int Run(string[] args) => RunAsync(Options.Parse(args)).GetAwaiter().GetResult();

    private static async Task<int> RunAsync(Options options)
    {
        var token = (await File.ReadAllTextAsync(options.BridgeTokenFile)).Trim();
        using var channel = GrpcChannel.ForAddress(options.Url, new GrpcChannelOptions { HttpHandler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true } });
        var events = new Events.EventsClient(channel);
        var headers = new Metadata { { "authorization", $"Bearer {token}" } };

        Console.WriteLine($"records benchmark against {options.Url} ({Environment.ProcessorCount} cores, load {LoadAverage()})");

        // 1. Pushes: every call is validated and durably enqueued before it answers.
        var jobsBefore = await CountAsync(options.Database, "SELECT count(*) FROM jobs WHERE kind = 'series'");
        var prefix = Random.Shared.Next(0x10000000, 0x7fffffff).ToString("x8", CultureInfo.InvariantCulture);
        var next = -1;
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, options.Concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < options.Events)
            {
                var id = $"{prefix}-{i:x8}-00000000-00000000-00000000";
                await events.NotifyStableSeriesAsync(new NotifyStableSeriesRequest { OrthancSeriesId = id, ChangeSeq = 0 }, headers);
            }
        }));
        watch.Stop();
        var recorded = await CountAsync(options.Database, "SELECT count(*) FROM jobs WHERE kind = 'series'") - jobsBefore;
        var rate = options.Events / watch.Elapsed.TotalSeconds;
        Console.WriteLine($"events: {options.Events} NotifyStableSeries with {options.Concurrency} concurrent calls in {watch.Elapsed.TotalSeconds:0.00} s "
            + $"= {rate:0} events/s ({rate / 1000:0.00}× the 1,000/s target); {recorded} jobs in PostgreSQL");
        // Duplicates: the same pushes again must add nothing.
        watch.Restart();
        for (var i = 0; i < Math.Min(1000, options.Events); i++)
        {
            await events.NotifyStableSeriesAsync(new NotifyStableSeriesRequest { OrthancSeriesId = $"{prefix}-{i:x8}-00000000-00000000-00000000" }, headers);
        }
        var afterDuplicates = await CountAsync(options.Database, "SELECT count(*) FROM jobs WHERE kind = 'series'") - jobsBefore;
        Console.WriteLine($"duplicates: {Math.Min(1000, options.Events)} repeated pushes added {afterDuplicates - recorded} jobs");

        if (options.Orthanc is null)
        {
            return recorded == options.Events && afterDuplicates == recorded ? 0 : 1;
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
        await CountAsync(options.Database, "UPDATE change_cursor SET last_seq = 0 RETURNING 0");
        watch.Restart();
        while (await CountAsync(options.Database, "SELECT last_seq FROM change_cursor") < lastSeq)
        {
            await Task.Delay(20);
        }
        watch.Stop();
        var changesRate = lastSeq / watch.Elapsed.TotalSeconds;
        Console.WriteLine($"catch-up: {lastSeq} Orthanc changes read and enqueued in {watch.Elapsed.TotalSeconds:0.00} s = {changesRate:0} changes/s "
            + $"(10,000 changes in {10000 / changesRate:0.0} s; target 10 s) — includes up to one CatchUpInterval of waiting for the worker's next pass");
        return 0;
    }

    private static async Task<long> CountAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    private static string LoadAverage()
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

    private sealed record Options(string Url, string BridgeTokenFile, string Database, int Events, int Concurrency,
        string? Orthanc, string? OrthancUser, string? OrthancPasswordFile, int PopulateSeries)
    {
        public static Options Parse(string[] args)
        {
            var values = new Dictionary<string, string>(StringComparer.Ordinal);
            for (var i = 0; i + 1 < args.Length; i += 2)
            {
                values[args[i]] = args[i + 1];
            }
            string Required(string name) => values.TryGetValue(name, out var v) ? v : throw new ArgumentException($"records: {name} is required");
            int Number(string name, int fallback) => values.TryGetValue(name, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
            return new Options(
                values.GetValueOrDefault("--url", "http://127.0.0.1:50051"), Required("--bridge-token-file"), Required("--database"),
                Number("--events", 20000), Number("--concurrency", 64),
                values.GetValueOrDefault("--orthanc"), values.GetValueOrDefault("--orthanc-user"), values.GetValueOrDefault("--orthanc-password-file"),
                Number("--populate-series", 0));
        }
    }
}
