using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Dicom.Tests.Tools;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Tests.Segmentation;

/// <summary>
/// SEGs written by OHIF 3.13.2's export code (@cornerstonejs/adapters 5.6.8 generateSegmentation, run by
/// Fixtures/cornerstone/make-ohif-segs.mjs) from the dcmjs fixture series: LABELMAP + RLE with descending
/// frames, sparse references and SliceThickness = frame distance (OHIF's default store), and BINARY packed frame
/// by frame (5×7 = 35 pixels, so not the standard continuous layout).
/// </summary>
public sealed class OhifSegTests
{
    private static readonly SeriesVolume Series = SeriesVolumeBuilder.Build(
        Directory.GetFiles(Fixtures.Path("dcmjs", "series"), "*.dcm").Select(DicomReader.ReadFile));

    private static readonly SegmentMapping Mapping = SegmentMapping.Parse("Segment 1=1,Segment 2=2");

    private static byte[] Expected()
    {
        // make-ohif-segs.mjs paints stack images 1, 3, 5 (descending z) = ascending slices 4, 2, 0.
        (int Slice, int Pixel, byte Value)[] voxels = [(4, 0, 1), (4, 7, 1), (4, 34, 1), (2, 8, 1), (2, 9, 1), (2, 16, 2), (2, 17, 2), (2, 33, 2), (0, 1, 2)];
        var expected = new byte[6 * 35];
        foreach (var (k, p, v) in voxels)
        {
            expected[(k * 35) + p] = v;
        }
        return expected;
    }

    [Fact]
    public void Ohif_default_labelmap_rle_seg_reads_onto_the_slices_it_was_painted_on()
    {
        var file = DicomReader.ReadFile(Fixtures.Path("cornerstone", "seg-ohif-labelmap-rle.dcm"));

        var result = SegmentationReader.Read(file, Series.Grid, Mapping);

        Assert.Equal((SopClasses.LabelMapSegmentation, TransferSyntaxes.RleLossless), (file.Dataset.GetString(DicomTags.SOPClassUID), file.TransferSyntaxUid));
        Assert.Equal(Expected(), result.LabelMap.Data);
        Assert.Equal([2, 4], result.Segments.Single(s => s.Value == 1).Slices);
        Assert.Equal("OHIF Brush", result.Segments[0].Segment.AlgorithmName);
    }

    [Fact]
    public void Ohif_bitmap_seg_packed_frame_by_frame_reads_the_same()
    {
        var file = DicomReader.ReadFile(Fixtures.Path("cornerstone", "seg-ohif-bitmap.dcm"));

        var result = SegmentationReader.Read(file, Series.Grid, Mapping);

        // 4 frames of 35 pixels: 20 bytes frame by frame, where the standard layout would need 18.
        Assert.Equal(20, file.Dataset[DicomTags.PixelData]!.Value.Length);
        Assert.Equal("BINARY", result.SegmentationType);
        Assert.Equal(Expected(), result.LabelMap.Data);
    }
}
