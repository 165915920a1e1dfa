using OrthancSeg.Contracts.V1;
using OrthancSeg.IntegrationTests.Records;
using OrthancSeg.Tests.Support;
using static OrthancSeg.IntegrationTests.Datasets.SnapshotHarness;

namespace OrthancSeg.IntegrationTests.Datasets;

/// <summary>
/// What a case may ask of the worker in an export: a series over OrthancSeg:Limits, or one the worker runs out of memory on, is a case
/// left out with the reason, not a crash or a failed export.
/// </summary>
public sealed class LimitsExportTests : IDisposable
{
    private readonly string _raw = Directory.CreateTempSubdirectory("orthancseg-nnunet-raw-").FullName;

    public void Dispose() => Directory.Delete(_raw, recursive: true);

    [Fact]
    public async Task A_series_over_the_configured_volume_limit_is_left_out_with_the_reason_and_the_others_are_exported()
    {
        // 1 MiB: the small series (16×16×5 int16, 2.5 KB) fits, the large one (256×256×10 int16, 1.25 MiB) does not.
        await using var harness = await RecordsHarness.StartAsync(Settings(_raw, new() { ["OrthancSeg:Limits:MaxVolumeBytes"] = (1 << 20).ToString(System.Globalization.CultureInfo.InvariantCulture) }));
        var small = new TestSeries(slices: 5, rows: 16, columns: 16);
        var large = new TestSeries(slices: 10, rows: 256, columns: 256);
        var keys = await LabelledCasesAsync(harness, small, large);

        var snapshot = await WaitForFinishAsync(harness, (await harness.Snapshots.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = "liver-ct" })).Snapshot.Id);

        Assert.True(snapshot.State == SnapshotState.Succeeded, snapshot.Error);
        Assert.Equal([keys[small.SeriesInstanceUid]], snapshot.Cases.Select(c => c.CaseKey));
        var excluded = Assert.Single(snapshot.Excluded);
        Assert.Equal(keys[large.SeriesInstanceUid], excluded.CaseKey);
        Assert.StartsWith("the series was refused by the volume builder: The volume would be 256×256×10 voxels of 2 byte(s)", excluded.Reason, StringComparison.Ordinal);
        Assert.EndsWith("over the limit of 1 MiB per volume (MaxVolumeBytes)", excluded.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_case_that_runs_the_worker_out_of_memory_is_left_out_with_the_reason_and_the_export_goes_on()
    {
        // A 128 MiB GC heap: the large series' files (~79 MB) fit, its volume (another ~79 MB) does not; the small case needs little.
        await using var harness = await RecordsHarness.StartAsync(Settings(_raw, new()
        {
            ["DOTNET_GCHeapHardLimit"] = "0x8000000",
            ["OrthancSeg:Datasets:SeriesInFlight"] = "1",
        }));
        var small = new TestSeries(slices: 5, rows: 16, columns: 16);
        var large = new TestSeries(slices: 150, rows: 512, columns: 512);
        var keys = await LabelledCasesAsync(harness, small, large);

        var snapshot = await WaitForFinishAsync(harness, (await harness.Snapshots.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = "liver-ct" })).Snapshot.Id);

        Assert.True(snapshot.State == SnapshotState.Succeeded, $"{snapshot.Error}\n{harness.WorkerLog()}");
        Assert.Equal([keys[small.SeriesInstanceUid]], snapshot.Cases.Select(c => c.CaseKey));
        var excluded = Assert.Single(snapshot.Excluded);
        Assert.Equal(keys[large.SeriesInstanceUid], excluded.CaseKey);
        Assert.StartsWith("the worker ran out of memory for this case", excluded.Reason, StringComparison.Ordinal);
        Assert.Empty(Directory.GetDirectories(_raw, ".Dataset*"));
    }
}
