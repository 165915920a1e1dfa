using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Dicom.Tests.Tools;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Tests.Segmentation;

/// <summary>
/// Our BINARY SEG read by the viewers' own SEG importers, run in node on the dcmjs fixture series (5×7 pixels,
/// so frames share bytes in the bit stream): @cornerstonejs/adapters 5.6.8 (what OHIF 3.13.2 uses) and dcmjs
/// 0.51.1's Cornerstone adapter (OHIF's legacy import). Every voxel must land on the image and pixel we wrote
/// it for. The packages are installed once from the npm registry into a cache under /tmp.
/// </summary>
public sealed class ViewersReadOurSegTests : IDisposable
{
    private static readonly (int Slice, int Row, int Column, byte Value)[] Painted =
        [(0, 0, 0, 1), (0, 4, 6, 2), (1, 2, 3, 1), (3, 1, 5, 2), (3, 1, 6, 2), (5, 3, 0, 1), (5, 3, 1, 1)];

    private readonly TempDirectory _temp = new();
    private readonly string _seriesDir = Fixtures.Path("dcmjs", "series");
    private readonly SeriesVolume _series;
    private readonly string _segPath;

    public ViewersReadOurSegTests()
    {
        var files = Directory.GetFiles(_seriesDir).Select(DicomReader.ReadFile).ToList();
        _series = SeriesVolumeBuilder.Build(files);
        var labels = Volume.Allocate(_series.Volume.Geometry, VoxelType.UInt8);
        foreach (var (k, r, c, v) in Painted)
        {
            labels.Data[(k * 35) + (r * 7) + c] = v;
        }
        var written = SegmentationWriter.Write(labels, files.Select(f => f.Dataset).ToList(), [new(1, "liver"), new(2, "tumor")],
            new SegmentationWriterOptions(SegmentAlgorithmType.Automatic, "test-model"));
        _segPath = _temp.File("seg.dcm");
        File.WriteAllBytes(_segPath, DicomWriter.ToBytes(DicomFile.Create(written.Segmentation!)));
    }

    public void Dispose() => _temp.Dispose();

    private void AssertVoxels(ExternalTool.Result result)
    {
        Assert.True(result.ExitCode == 0, result.Error);
        var expected = Painted.Select(p => $"{_series.SopInstanceUids[p.Slice]} {p.Row} {p.Column} {p.Value}").Order(StringComparer.Ordinal);
        Assert.Equal(expected, result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Ohif_3_13_cornerstone_adapters_place_every_voxel_of_our_seg()
    {
        var home = NodePackages.Install("cornerstone");
        // ESM resolves packages from the script's own directory, so the script runs from the cache.
        var script = Path.Combine(home, "read-seg.mjs");
        File.Copy(Fixtures.Path("cornerstone", "read-seg.mjs"), script, overwrite: true);

        AssertVoxels(ExternalTool.Run("node", [script, _segPath, _seriesDir], workingDirectory: home));
    }

    [Fact]
    public void Legacy_dcmjs_import_places_every_voxel_of_our_seg()
    {
        var home = NodePackages.Install("dcmjs");

        AssertVoxels(ExternalTool.Run("node", [Fixtures.Path("dcmjs", "read-seg.mjs"), _segPath, _seriesDir],
            environment: new Dictionary<string, string> { ["DCMJS_HOME"] = home }));
    }
}
