using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using Npgsql;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Dicom;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.Tests.Support;
using Xunit.Abstractions;

namespace OrthancSeg.IntegrationTests.Records;

/// <summary>
/// Issue 14: the worker's recording of a SEG never dies on the SEG's content. A corpus of hostile SEGs (mutations of valid
/// BINARY and LABELMAP SEGs) is uploaded to a real Orthanc with the bridge, in parallel; every one Orthanc stores must end as
/// exactly one label or pending record with a verdict, with no dead letter, the worker healthy and its memory bounded.
/// </summary>
public sealed class HostileSegTests(ITestOutputHelper output)
{
    private const int CorpusSize = 1200;
    private const long MemoryLimit = 1L << 30;
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(6);

    [Fact]
    public async Task Every_hostile_seg_orthanc_stores_ends_as_one_label_or_pending_record_and_nothing_dead_letters()
    {
        var stopwatch = Stopwatch.StartNew();
        await using var harness = await RecordsHarness.StartAsync(new Dictionary<string, string>
        {
            // Stable-series pushes and the catch-up record every SEG series; re-checks of new series would only add churn here.
            ["OrthancSeg:Records:NewSeriesCheckDelay"] = "00:30:00",
            ["Serilog:MinimumLevel:Default"] = "Warning",
        });
        await harness.Workflows.CreateWorkflowAsync(new CreateWorkflowRequest
        {
            Workflow = new Workflow
            {
                Name = "liver-ct",
                DatasetId = 502,
                Selection = new SelectionRule { Modality = "CT" },
                Labels = { new LabelDefinition { Value = 1, Name = "liver" }, new LabelDefinition { Value = 2, Name = "tumor" } },
            },
        });
        var series = Enumerable.Range(0, 6).Select(_ => new TestSeries(slices: 4)).ToList();
        foreach (var s in series)
        {
            await harness.UploadSeriesAsync(s);
        }
        await harness.WaitForCountAsync("SELECT count(*) FROM cases", series.Count, Patience, "the cases of the image series");

        var corpus = HostileSegs.Generate(series, CorpusSize, seed: 14).ToList();
        // Compressed SEGs whose codestream is damaged: the worker must have Orthanc transcode them, and Orthanc cannot.
        foreach (var s in series)
        {
            corpus.Add(new HostileSeg("LABELMAP jpeg-ls: codestream without its start marker", "jpeg-ls", await DamagedJpegLsAsync(s)));
        }
        var stored = new ConcurrentDictionary<string, HostileSeg>();
        var refused = new ConcurrentBag<string>();
        await Parallel.ForEachAsync(corpus, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (seg, ct) =>
        {
            using var content = new ByteArrayContent(seg.Bytes);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
            HttpResponseMessage response;
            try
            {
                response = await harness.Orthanc.PostAsync(new Uri("instances", UriKind.Relative), content, ct);
            }
            catch (HttpRequestException e)
            {
                throw new InvalidOperationException($"Orthanc stopped answering at '{seg.Mutation}': {e.Message}\n{harness.OrthancServer.LogTail()}", e);
            }
            using (response)
            {
                if (!response.IsSuccessStatusCode)
                {
                    refused.Add(seg.Kind);
                    return;
                }
                using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
                Assert.True(stored.TryAdd(json.RootElement.GetProperty("ID").GetString()!, seg), $"two SEGs of the corpus are one instance: {seg.Mutation}");
            }
        });
        var uploaded = stopwatch.Elapsed;

        // A bit flip may have hit the SOP Class UID: what Orthanc does not hold as a segmentation is no SEG to record.
        var segs = new ConcurrentDictionary<string, HostileSeg>();
        await Parallel.ForEachAsync(stored, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (entry, ct) =>
        {
            var sopClass = await harness.Orthanc.GetStringAsync(new Uri($"instances/{entry.Key}/metadata/SopClassUid", UriKind.Relative), ct);
            if (sopClass.Trim() is "1.2.840.10008.5.1.4.1.1.66.4" or "1.2.840.10008.5.1.4.1.1.66.7")
            {
                segs[entry.Key] = entry.Value;
            }
        });
        Assert.True(segs.Count >= 1000, $"only {segs.Count} of {corpus.Count} hostile SEGs were stored by Orthanc as segmentations");

        const string Recorded = """
            SELECT count(DISTINCT orthanc_instance_id) FROM (
                SELECT orthanc_instance_id FROM labels UNION ALL SELECT orthanc_instance_id FROM pending_segmentations) r
            """;
        await harness.WaitForCountAsync(Recorded, segs.Count, Patience, $"a record of each of the {segs.Count} stored SEGs");
        await ProcessRunner.WaitUntilAsync(async () => await harness.CountAsync(
            "SELECT count(*) FROM jobs WHERE kind = 'segmentation' AND state IN ('queued', 'running', 'failed')") == 0, Patience, "the SEG jobs to finish");

        var records = await RecordsAsync(harness.DatabaseConnectionString);
        var verdicts = new Dictionary<string, int>();
        var problems = new List<string>();
        foreach (var (id, seg) in segs)
        {
            var mine = records.Where(r => r.OrthancId == id).ToList();
            if (mine.Count != 1)
            {
                problems.Add($"{seg.Mutation}: {mine.Count} records ({string.Join(", ", mine.Select(r => r.Verdict))})");
                continue;
            }
            var record = mine[0];
            if (record.Verdict != "accepted" && string.IsNullOrWhiteSpace(record.Reason))
            {
                problems.Add($"{seg.Mutation}: {record.Verdict} without a reason");
            }
            verdicts[record.Verdict] = verdicts.GetValueOrDefault(record.Verdict) + 1;
        }
        var deadLetters = await harness.CountAsync("SELECT count(*) FROM dead_letters");
        var memory = PeakResidentBytes(harness.Worker.ProcessId);

        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{corpus.Count} hostile SEGs: {stored.Count} stored by Orthanc ({segs.Count} as segmentations), {refused.Count} refused; uploaded in {uploaded.TotalSeconds:0} s, all recorded after {stopwatch.Elapsed.TotalSeconds:0} s"));
        output.WriteLine("Verdicts: " + string.Join(", ", verdicts.OrderBy(v => v.Key).Select(v => $"{v.Key} {v.Value}")));
        output.WriteLine("By mutation: " + string.Join("; ", segs.GroupBy(s => s.Value.Kind).OrderBy(g => g.Key).Select(g =>
            $"{g.Key} " + string.Join("/", g.Select(s => records.FirstOrDefault(r => r.OrthancId == s.Key)?.Verdict ?? "none").GroupBy(v => v).OrderBy(v => v.Key).Select(v => $"{v.Count()} {v.Key}")))));
        output.WriteLine("Refused by Orthanc, by mutation: " + string.Join(", ", refused.GroupBy(k => k).OrderBy(g => g.Key).Select(g => $"{g.Key} {g.Count()}")));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Worker peak RSS {memory / (1 << 20)} MiB; dead letters {deadLetters}"));
        foreach (var reason in records.Where(r => r.Reason is not null).GroupBy(r => Shape(r.Reason!)).OrderByDescending(g => g.Count()).Take(25))
        {
            output.WriteLine($"  {reason.Count(),5} × {reason.Key}");
        }

        Assert.True(problems.Count == 0, string.Join('\n', problems.Take(30)));
        Assert.Equal(0, deadLetters);
        Assert.False(harness.Worker.HasExited);
        Assert.True(await harness.WorkerIsServingAsync());
        Assert.True(memory < MemoryLimit, $"the worker's peak RSS was {memory / (1 << 20)} MiB");
        // Every verdict is represented: the corpus holds usable SEGs, broken ones and ones whose series is unknown.
        Assert.True(verdicts.GetValueOrDefault("accepted") > 0 && verdicts.GetValueOrDefault("rejected") > 0 && verdicts.GetValueOrDefault("pending") > 0,
            string.Join(", ", verdicts));
        Assert.All(segs.Where(s => s.Value.Kind == "jpeg-ls").Select(s => records.Single(r => r.OrthancId == s.Key)),
            r => Assert.Contains("Orthanc cannot transcode the file from JPEG-LS", r.Reason, StringComparison.Ordinal));
        // The file's control characters were kept visible, escaped, rather than dropped with the row.
        Assert.True(records.Any(r => r.Reason?.Contains("\\u0000", StringComparison.Ordinal) == true), "no stored reason shows an escaped NUL");
        Assert.DoesNotContain(records, r => (r.Reason ?? "").Any(c => char.IsControl(c)) || r.Segments.Any(char.IsControl));
    }

    private static async Task<byte[]> DamagedJpegLsAsync(TestSeries series)
    {
        var directory = Directory.CreateTempSubdirectory("orthancseg-jls-").FullName;
        try
        {
            var native = Path.Combine(directory, "seg.dcm");
            var compressed = Path.Combine(directory, "seg-jls.dcm");
            await File.WriteAllBytesAsync(native, DicomWriter.ToBytes(series.Seg([new(1, "liver")], [new(1, 1)], labelMap: true)));
            await ProcessRunner.RunAsync("dcmcjpls", [native, compressed], TimeSpan.FromSeconds(30));
            var bytes = await File.ReadAllBytesAsync(compressed);
            var start = bytes.AsSpan().IndexOf(new byte[] { 0xFF, 0xD8, 0xFF });
            bytes[start] = 0;
            bytes[start + 1] = 0;
            return bytes;
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private sealed record Record(string OrthancId, string Verdict, string? Reason, string Segments);

    private static async Task<List<Record>> RecordsAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("""
            SELECT orthanc_instance_id, verdict, rejection_reason, segments::text FROM labels
            UNION ALL
            SELECT orthanc_instance_id, 'pending', reason, '' FROM pending_segmentations
            """, connection);
        var result = new List<Record>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            result.Add(new Record(reader.GetString(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetString(3)));
        }
        return result;
    }

    /// <summary>The kernel's high-water mark of the process's resident memory (VmHWM), in bytes.</summary>
    private static long PeakResidentBytes(int pid)
    {
        var line = File.ReadAllLines($"/proc/{pid}/status").Single(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    }

    /// <summary>A reason with its UIDs, numbers and quoted names blurred, so reasons of one kind count together.</summary>
    private static string Shape(string reason)
    {
        var text = System.Text.RegularExpressions.Regex.Replace(reason, @"'[^']*'|[0-9][0-9.]*", "#");
        return text.Length > 150 ? text[..150] : text;
    }
}
