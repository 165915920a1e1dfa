using System.Security.Cryptography;
using System.Text.RegularExpressions;
using OrthancSeg.Contracts.V1;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.IntegrationTests.Records;
using OrthancSeg.Tests.Support;
using static OrthancSeg.IntegrationTests.Datasets.SnapshotHarness;

namespace OrthancSeg.IntegrationTests.Datasets;

/// <summary>
/// Exports into a real 50 MB filesystem (a tmpfs the test mounts as root): one that cannot fit is refused before anything is
/// fetched, with the folder, the need and the free space in the message, and leaves no building folder and the previous dataset as it was.
/// </summary>
public sealed class DiskSpaceExportTests : IDisposable
{
    private const string DatasetFolder = "Dataset007_LiverCT";
    private readonly Tmpfs _disk = Tmpfs.Mount(megabytes: 50);

    public void Dispose() => _disk.Dispose();

    [Fact]
    public async Task An_export_that_does_not_fit_in_50_MB_is_refused_and_leaves_no_building_folder_and_the_previous_dataset_intact()
    {
        var raw = Path.Combine(_disk.Path, "nnUNet_raw");
        await using var harness = await RecordsHarness.StartAsync(Settings(raw));
        await CreateWorkflowAsync(harness);
        var small = Enumerable.Range(0, 2).Select(_ => new TestSeries(slices: 5, rows: 16, columns: 16)).ToList();
        foreach (var s in small)
        {
            await UploadAsync(harness, PatternedFiles(s));
        }
        await harness.WaitForCountAsync("SELECT count(*) FROM cases", 2, Patience, "2 cases");
        foreach (var s in small)
        {
            await UploadAsync(harness, [s.Seg([new(1, "liver")], [new(1, 1)])]);
        }
        await harness.WaitForCountAsync("SELECT count(*) FROM cases WHERE status = 'labeled'", 2, Patience, "2 labelled cases");
        var first = await WaitForFinishAsync(harness, (await harness.Snapshots.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = "liver-ct" })).Snapshot.Id);
        Assert.True(first.State == SnapshotState.Succeeded, first.Error);
        var dataset = Path.Combine(raw, DatasetFolder);
        var before = Hashes(dataset);

        // 100 slices of 512×512 at 16 bits: about 52 MB of DICOM, so the export asks for about 61 MiB of the 50.
        var large = new TestSeries(slices: 100, rows: 512, columns: 512);
        await UploadAsync(harness, PatternedFiles(large));
        await harness.WaitForCountAsync("SELECT count(*) FROM cases", 3, Patience, "3 cases");
        await UploadAsync(harness, [large.Seg([new(1, "liver")], [new(1, 1)])]);
        await harness.WaitForCountAsync("SELECT count(*) FROM cases WHERE status = 'labeled'", 3, Patience, "3 labelled cases");
        var second = await WaitForFinishAsync(harness, (await harness.Snapshots.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = "liver-ct" })).Snapshot.Id);

        Assert.Equal(SnapshotState.Failed, second.State);
        Assert.True(Regex.IsMatch(second.Error, $@"^not enough disk space in {Regex.Escape(raw)}: need ~6\d MB, (49|50) MB free"), second.Error);
        // A refusal, not a failure to retry: one attempt.
        Assert.Equal(1, await harness.CountAsync("SELECT attempts FROM jobs WHERE kind = 'snapshot' ORDER BY id DESC LIMIT 1"));
        Assert.Equal([dataset], Directory.GetFileSystemEntries(raw));
        Assert.Equal(before, Hashes(dataset));
    }

    [Fact]
    public async Task A_disk_that_fills_during_an_export_fails_the_attempt_with_a_clear_message_and_leaves_no_building_folder()
    {
        var raw = Path.Combine(_disk.Path, "nnUNet_raw");
        // One series and one request at a time, one attempt: slow enough to fill the disk in the middle, and the failure is final.
        await using var harness = await RecordsHarness.StartAsync(Settings(raw, new()
        {
            ["OrthancSeg:Datasets:SeriesInFlight"] = "1",
            ["OrthancSeg:Datasets:RequestsPerSeries"] = "1",
            ["OrthancSeg:Datasets:MaxAttempts"] = "1",
        }));
        await CreateWorkflowAsync(harness);
        var series = Enumerable.Range(0, 6).Select(_ => new TestSeries(slices: 40, rows: 96, columns: 96)).ToList();
        foreach (var s in series)
        {
            await UploadAsync(harness, PatternedFiles(s));
        }
        await harness.WaitForCountAsync("SELECT count(*) FROM cases", 6, Patience, "6 cases");
        foreach (var s in series)
        {
            await UploadAsync(harness, [s.Seg([new(1, "liver")], [new(10, 1)])]);
        }
        await harness.WaitForCountAsync("SELECT count(*) FROM cases WHERE status = 'labeled'", 6, Patience, "6 labelled cases");
        var first = await WaitForFinishAsync(harness, (await harness.Snapshots.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = "liver-ct" })).Snapshot.Id);
        Assert.True(first.State == SnapshotState.Succeeded, first.Error);
        var dataset = Path.Combine(raw, DatasetFolder);
        var before = Hashes(dataset);
        // New labels for every case, so the next export writes every case again rather than linking the previous files.
        foreach (var s in series)
        {
            await UploadAsync(harness, [s.Seg([new(1, "liver")], [new(20, 1)])]);
        }
        await harness.WaitForCountAsync("SELECT count(*) FROM labels WHERE is_current AND 20 = ANY (painted_slices)", 6, Patience, "6 new current labels");

        var second = (await harness.Snapshots.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = "liver-ct" })).Snapshot;
        await ProcessRunner.WaitUntilAsync(async () =>
            await harness.CountAsync($"SELECT count(*) FROM snapshots WHERE id = {second.Id} AND state = 'running' AND cases_done >= 1") == 1,
            Patience, "the second export to be under way");
        // Past the free-space check: something else takes the rest of the disk.
        var filler = Path.Combine(_disk.Path, "filler");
        try
        {
            using var file = new FileStream(filler, FileMode.CreateNew);
            var chunk = new byte[1 << 20];
            while (true)
            {
                file.Write(chunk);
                file.Flush(flushToDisk: true);
            }
        }
        catch (IOException)
        {
            // The disk is full.
        }
        var failed = await WaitForFinishAsync(harness, second.Id);

        Assert.True(failed.State == SnapshotState.Failed, $"{failed.State}: {failed.Error}\n{harness.WorkerLog()}");
        Assert.Contains($"not enough disk space in {raw}: the disk filled up during the export", failed.Error, StringComparison.Ordinal);
        Assert.Contains("No space left on device", failed.Error, StringComparison.Ordinal);
        Assert.Equal([dataset], Directory.GetFileSystemEntries(raw));
        Assert.Equal(before, Hashes(dataset));
    }

    private static Dictionary<string, string> Hashes(string folder) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(folder, f), f => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(f))));
}
