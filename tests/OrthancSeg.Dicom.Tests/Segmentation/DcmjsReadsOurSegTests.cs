using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Dicom.Tests.Tools;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Tests.Segmentation;

/// <summary>
/// Our SEG read by dcmjs 0.51.1's Cornerstone adapter (OHIF's legacy SEG import, Fixtures/dcmjs/read-seg.mjs):
/// every voxel must land on the image and pixel we wrote it for. dcmjs is installed once from the npm registry
/// into a cache directory under /tmp.
/// </summary>
public sealed class DcmjsReadsOurSegTests
{
    private const string DcmjsVersion = "0.51.1";

    private static string DcmjsHome()
    {
        var home = Path.Combine(Path.GetTempPath(), $"orthancseg-dcmjs-{DcmjsVersion}");
        if (!File.Exists(Path.Combine(home, "node_modules", "dcmjs", "package.json")))
        {
            Directory.CreateDirectory(home);
            var install = ExternalTool.Run("npm", ["install", "--no-save", "--no-audit", "--no-fund", "--prefix", home, $"dcmjs@{DcmjsVersion}"], timeout: TimeSpan.FromMinutes(5));
            Assert.True(install.ExitCode == 0, $"npm install dcmjs failed: {install.Error}");
        }
        return home;
    }

    [Fact]
    public void Dcmjs_places_every_voxel_of_our_seg_on_the_image_we_meant()
    {
        var seriesDir = Fixtures.Path("dcmjs", "series");
        var files = Directory.GetFiles(seriesDir).Select(DicomReader.ReadFile).ToList();
        var series = SeriesVolumeBuilder.Build(files);
        var labels = Volume.Allocate(series.Volume.Geometry, VoxelType.UInt8);
        (int Slice, int Row, int Column, byte Value)[] painted = [(0, 0, 0, 1), (0, 4, 6, 2), (1, 2, 3, 1), (3, 1, 5, 2), (3, 1, 6, 2), (5, 3, 0, 1)];
        foreach (var (k, r, c, v) in painted)
        {
            labels.Data[(k * 35) + (r * 7) + c] = v;
        }
        var written = SegmentationWriter.Write(labels, files.Select(f => f.Dataset).ToList(), [new(1, "liver"), new(2, "tumor")],
            new SegmentationWriterOptions(SegmentAlgorithmType.Automatic, "test-model"));
        using var temp = new TempDirectory();
        var segPath = temp.File("seg.dcm");
        File.WriteAllBytes(segPath, DicomWriter.ToBytes(DicomFile.Create(written.Segmentation!)));

        var result = ExternalTool.Run("node", [Fixtures.Path("dcmjs", "read-seg.mjs"), segPath, seriesDir],
            environment: new Dictionary<string, string> { ["DCMJS_HOME"] = DcmjsHome() });

        Assert.True(result.ExitCode == 0, result.Error);
        var expected = painted.Select(p => $"{series.SopInstanceUids[p.Slice]} {p.Row} {p.Column} {p.Value}").Order(StringComparer.Ordinal);
        Assert.Equal(expected, result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
    }
}
