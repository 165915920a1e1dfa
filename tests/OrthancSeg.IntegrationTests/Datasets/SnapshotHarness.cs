using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using Grpc.Core;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Dicom;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.IntegrationTests.Records;
using OrthancSeg.Tests.Support;

namespace OrthancSeg.IntegrationTests.Datasets;

/// <summary>Helpers shared by the snapshot tests: series with known voxels, uploads in other transfer syntaxes, waiting on exports, reading datasets back.</summary>
internal static class SnapshotHarness
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(180);

    public static Dictionary<string, string> Settings(string rawRoot, Dictionary<string, string>? more = null)
    {
        var settings = new Dictionary<string, string> { ["OrthancSeg:Datasets:RawRoot"] = rawRoot, ["OrthancSeg:Jobs:PollInterval"] = "00:00:00.200" };
        foreach (var (key, value) in more ?? [])
        {
            settings[key] = value;
        }
        return settings;
    }

    public static async Task CreateWorkflowAsync(RecordsHarness harness, int datasetId = 7) =>
        await harness.Workflows.CreateWorkflowAsync(new CreateWorkflowRequest
        {
            Workflow = new Workflow
            {
                Name = "liver-ct",
                DatasetId = datasetId,
                DatasetName = "LiverCT",
                Selection = new SelectionRule { Modality = "CT" },
                Labels = { new LabelDefinition { Value = 1, Name = "liver" }, new LabelDefinition { Value = 2, Name = "tumor", Synonyms = { "lesion" } } },
            },
        });

    /// <summary>The series' files with voxel (column c, row r) of slice k = 100·k + 3·r + c, so a test can tell slices and pixels apart.</summary>
    public static IEnumerable<DicomFile> PatternedFiles(TestSeries series)
    {
        var k = 0;
        foreach (var file in series.Files())
        {
            var pixels = new byte[series.Rows * series.Columns * 2];
            for (var r = 0; r < series.Rows; r++)
            {
                for (var c = 0; c < series.Columns; c++)
                {
                    var v = (short)((100 * k) + (3 * r) + c);
                    BitConverter.TryWriteBytes(pixels.AsSpan(((r * series.Columns) + c) * 2), v);
                }
            }
            file.Dataset.SetBytes(DicomTags.PixelData, DicomVR.OW, pixels);
            k++;
            yield return file;
        }
    }

    /// <summary>Uploads files, optionally re-encoded first by a DCMTK tool (dcmcjpls for JPEG-LS, dcmcrle for RLE as OHIF stores SEGs); returns Orthanc ids.</summary>
    public static async Task<List<string>> UploadAsync(RecordsHarness harness, IEnumerable<DicomFile> files, string? encoder = null)
    {
        var ids = new List<string>();
        var directory = Directory.CreateTempSubdirectory("orthancseg-upload-");
        try
        {
            foreach (var file in files)
            {
                var bytes = DicomWriter.ToBytes(file);
                if (encoder is not null)
                {
                    var native = Path.Combine(directory.FullName, "native.dcm");
                    var encoded = Path.Combine(directory.FullName, "encoded.dcm");
                    await File.WriteAllBytesAsync(native, bytes);
                    await ProcessRunner.RunAsync(encoder, [native, encoded], TimeSpan.FromSeconds(30));
                    bytes = await File.ReadAllBytesAsync(encoded);
                }
                using var content = new ByteArrayContent(bytes);
                content.Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
                using var response = await harness.Orthanc.PostAsync(new Uri("instances", UriKind.Relative), content);
                var body = await response.Content.ReadAsStringAsync();
                Assert.True(response.IsSuccessStatusCode, $"Orthanc refused an upload: {(int)response.StatusCode} {body}");
                using var json = JsonDocument.Parse(body);
                ids.Add(json.RootElement.GetProperty("ID").GetString()!);
            }
        }
        finally
        {
            directory.Delete(recursive: true);
        }
        return ids;
    }

    /// <summary>The workflow, the series and a SEG for each, uploaded and recorded as labelled cases: their case keys by series UID.</summary>
    public static async Task<Dictionary<string, string>> LabelledCasesAsync(RecordsHarness harness, params TestSeries[] series)
    {
        await CreateWorkflowAsync(harness);
        foreach (var s in series)
        {
            await UploadAsync(harness, PatternedFiles(s));
        }
        await harness.WaitForCountAsync("SELECT count(*) FROM cases", series.Length, Patience, $"{series.Length} cases");
        foreach (var s in series)
        {
            await UploadAsync(harness, [s.Seg([new(1, "liver")], [new(1, 1)])]);
        }
        await harness.WaitForCountAsync("SELECT count(*) FROM cases WHERE status = 'labeled'", series.Length, Patience, $"{series.Length} labelled cases");
        return (await harness.Cases.ListCasesAsync(new ListCasesRequest { Workflow = "liver-ct", PageSize = 100 })).Cases
            .ToDictionary(c => c.SeriesInstanceUid, c => c.CaseKey);
    }

    public static async Task<Snapshot> WaitForFinishAsync(RecordsHarness harness, long id)
    {
        using var cts = new CancellationTokenSource(Patience);
        Snapshot? last = null;
        try
        {
            using var watch = harness.Snapshots.WatchSnapshot(new WatchSnapshotRequest { Id = id }, cancellationToken: cts.Token);
            await foreach (var update in watch.ResponseStream.ReadAllAsync(cts.Token))
            {
                last = update.Snapshot;
            }
        }
        catch (Exception e) when (cts.IsCancellationRequested && e is OperationCanceledException or Grpc.Core.RpcException)
        {
            throw new TimeoutException($"snapshot {id} did not finish within {Patience} (last: {last})\n{harness.WorkerLog()}", e);
        }
        return (await harness.Snapshots.GetSnapshotAsync(new GetSnapshotRequest { Id = id })).Snapshot;
    }

    public static async Task<JsonDocument> InspectAsync(string datasetPath)
    {
        var script = Path.Combine(RepositoryPaths.Root, "tests", "OrthancSeg.IntegrationTests", "Datasets", "inspect_dataset.py");
        var output = await ProcessRunner.RunAsync("/usr/bin/python3", [script, datasetPath], TimeSpan.FromSeconds(120));
        return JsonDocument.Parse(output);
    }

    public static string Sha256(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    public static async Task<long> CaseIdAsync(RecordsHarness harness, string seriesInstanceUid) =>
        await harness.CountAsync($"SELECT id FROM cases WHERE series_instance_uid = '{seriesInstanceUid}'");

    public static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
