using System.Security.Cryptography;
using System.Text.RegularExpressions;
using OrthancSeg.Contracts.V1;
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
        var first = await WaitForFinishAsync(harness, (await harness.Admin.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = "liver-ct" })).Snapshot.Id);
        Assert.True(first.State == SnapshotState.Succeeded, first.Error);
        var dataset = Path.Combine(raw, DatasetFolder);
        var before = Hashes(dataset);

        // 100 slices of 512×512 at 16 bits: about 52 MB of DICOM, so the export asks for about 61 MiB of the 50.
        var large = new TestSeries(slices: 100, rows: 512, columns: 512);
        await UploadAsync(harness, PatternedFiles(large));
        await harness.WaitForCountAsync("SELECT count(*) FROM cases", 3, Patience, "3 cases");
        await UploadAsync(harness, [large.Seg([new(1, "liver")], [new(1, 1)])]);
        await harness.WaitForCountAsync("SELECT count(*) FROM cases WHERE status = 'labeled'", 3, Patience, "3 labelled cases");
        var second = await WaitForFinishAsync(harness, (await harness.Admin.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = "liver-ct" })).Snapshot.Id);

        Assert.Equal(SnapshotState.Failed, second.State);
        Assert.True(Regex.IsMatch(second.Error, $@"^not enough disk space in {Regex.Escape(raw)}: need ~6\d MB, (49|50) MB free"), second.Error);
        // A refusal, not a failure to retry: one attempt.
        Assert.Equal(1, await harness.CountAsync("SELECT attempts FROM jobs WHERE kind = 'snapshot' ORDER BY id DESC LIMIT 1"));
        Assert.Equal([dataset], Directory.GetFileSystemEntries(raw));
        Assert.Equal(before, Hashes(dataset));
    }

    private static Dictionary<string, string> Hashes(string folder) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(folder, f), f => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(f))));
}
