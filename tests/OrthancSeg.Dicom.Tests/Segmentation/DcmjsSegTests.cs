using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Dicom.Tests.Tools;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Tests.Segmentation;

/// <summary>
/// SEGs written by dcmjs 0.51.1's Cornerstone adapter (OHIF's legacy export) from a 6-slice 5×7 CT series, both
/// committed under Fixtures/dcmjs and regenerated with its make-fixtures.mjs. dcmjs numbers its stack top-down,
/// packs bits across frame boundaries, and by default writes FRACTIONAL 0/255 RLE.
/// </summary>
public sealed class DcmjsSegTests
{
    private static readonly SeriesVolume Series = SeriesVolumeBuilder.Build(
        Directory.GetFiles(Fixtures.Path("dcmjs", "series"), "*.dcm").Select(DicomReader.ReadFile));

    private static readonly SegmentMapping Mapping = SegmentMapping.Parse("liver=1,tumor=2");

    // What make-fixtures.mjs paints, in the ascending grid: (slice, row, column) → label.
    private static readonly (int Slice, int Row, int Column, byte Value)[] Expected =
    [
        (4, 0, 0, 1), (4, 1, 0, 1), (4, 4, 6, 1), (2, 1, 1, 1), (2, 1, 2, 1),
        (2, 2, 2, 2), (2, 2, 3, 2), (2, 4, 5, 2), (0, 0, 1, 2),
    ];

    private static void AssertExpected(LabelMapResult result)
    {
        var expected = new byte[6 * 35];
        foreach (var (k, r, c, v) in Expected)
        {
            expected[(k * 35) + (r * 7) + c] = v;
        }
        Assert.Equal(expected, result.LabelMap.Data);
    }

    [Fact]
    public void Series_written_by_dcmjs_builds_ascending_with_its_values()
    {
        Assert.Equal("7×5×6 voxels, spacing 0.6×0.8×2.5 mm, axial, int16", Series.Summary);
        Assert.Equal("1.2.826.0.1.3680043.8.498.77.100", Series.SopInstanceUids[0]);
        var volume = Series.Volume.AsInt16();
        Assert.Equal(3 * 100 + 17, volume[(3 * 35) + 17]);
    }

    [Fact]
    public void Dcmjs_binary_seg_with_frames_sharing_bytes_reads_onto_the_right_voxels()
    {
        var result = SegmentationReader.Read(DicomReader.ReadFile(Fixtures.Path("dcmjs", "seg-binary.dcm")), Series.Grid, Mapping);

        AssertExpected(result);
        Assert.Equal("BINARY", result.SegmentationType);
        Assert.Equal([2, 4], result.Segments.Single(s => s.Segment.Label == "Liver").Slices);
        Assert.Equal(5, result.Segments.Single(s => s.Segment.Label == "Liver").VoxelCount);
    }

    [Fact]
    public void Dcmjs_default_fractional_rle_seg_with_values_0_and_1_reads_as_binary()
    {
        var file = DicomReader.ReadFile(Fixtures.Path("dcmjs", "seg-fractional-rle.dcm"));

        var result = SegmentationReader.Read(file, Series.Grid, Mapping);

        Assert.Equal(TransferSyntaxes.RleLossless, file.TransferSyntaxUid);
        Assert.Equal("FRACTIONAL", result.SegmentationType);
        AssertExpected(result);
        Assert.Contains(result.Warnings, w => w.Contains("only the values 0 and 1", StringComparison.Ordinal));
    }
}
