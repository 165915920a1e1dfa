using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Dicom.Tests.Tools;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Tests.Segmentation;

/// <summary>
/// SEGs saved by the real OHIF 3.13.2 viewer in Chromium (tests/e2e/ohif-paint-and-save.mjs: a user's clicks,
/// brush strokes and Export → DICOM SEG → Save), with the 12-slice CT series they segment; see
/// Fixtures/ohif-3.13.2/README.md. OHIF shows the axial stack in descending z, so the slice it shows as k of 12
/// is our ascending slice 12 − k.
/// </summary>
public sealed class OhifSavedSegTests
{
    private const int Slices = 12;

    private static readonly SeriesVolume Series = SeriesVolumeBuilder.Build(
        Directory.GetFiles(Fixtures.Path("ohif-3.13.2", "series"), "*.dcm").Select(DicomReader.ReadFile));

    private static readonly SegmentMapping Mapping = SegmentMapping.Parse("Segment 1=1");

    [Fact]
    public void Default_save_is_a_labelmap_rle_seg_painted_on_the_three_slices_shown_3_6_9()
    {
        var file = DicomReader.ReadFile(Fixtures.Path("ohif-3.13.2", "seg-labelmap-rle.dcm"));

        var result = SegmentationReader.Read(file, Series.Grid, Mapping);

        Assert.Equal((SopClasses.LabelMapSegmentation, TransferSyntaxes.RleLossless), (file.Dataset.GetString(DicomTags.SOPClassUID), file.TransferSyntaxUid));
        Assert.Equal("LABELMAP", result.SegmentationType);
        Assert.Equal("OHIF default labelmap", file.Dataset.GetString(DicomTags.SeriesDescription));
        AssertPaintedOn(result, shownSlices: [3, 6, 9], algorithmName: "OHIF Brush");
    }

    [Fact]
    public void Save_configured_for_bitmap_is_a_binary_explicit_vr_seg_painted_on_the_three_slices_shown_2_7_11()
    {
        var file = DicomReader.ReadFile(Fixtures.Path("ohif-3.13.2", "seg-binary.dcm"));

        var result = SegmentationReader.Read(file, Series.Grid, Mapping);

        Assert.Equal((SopClasses.Segmentation, TransferSyntaxes.ExplicitVRLittleEndian), (file.Dataset.GetString(DicomTags.SOPClassUID), file.TransferSyntaxUid));
        Assert.Equal("BINARY", result.SegmentationType);
        Assert.Equal(1, file.Dataset.GetInt(DicomTags.BitsAllocated));
        Assert.Equal("OHIF bitmap store", file.Dataset.GetString(DicomTags.SeriesDescription));
        // OHIF's bitmap export leaves SegmentAlgorithmName out (allowed for MANUAL segments); the labelmap export writes it.
        AssertPaintedOn(result, shownSlices: [2, 7, 11], algorithmName: null);
    }

    [Fact]
    public void Both_saves_reference_the_fixture_series_and_its_frame_of_reference()
    {
        foreach (var name in new[] { "seg-labelmap-rle.dcm", "seg-binary.dcm" })
        {
            var ds = DicomReader.ReadFile(Fixtures.Path("ohif-3.13.2", name)).Dataset;

            Assert.Equal(Series.FrameOfReferenceUid, ds.GetString(DicomTags.FrameOfReferenceUID));
            Assert.Equal(Series.StudyInstanceUid, ds.GetString(DicomTags.StudyInstanceUID));
            Assert.Equal(Series.SeriesInstanceUid, Assert.Single(ds.GetSequence(DicomTags.ReferencedSeriesSequence)).GetString(DicomTags.SeriesInstanceUID));
            Assert.Equal("SEG", ds.GetString(DicomTags.Modality));
        }
    }

    private static void AssertPaintedOn(LabelMapResult result, int[] shownSlices, string? algorithmName)
    {
        var expected = shownSlices.Select(k => Slices - k).Order().ToArray();
        var segment = Assert.Single(result.Segments);
        Assert.Equal((1, "Segment 1", "MANUAL", algorithmName), (segment.Segment.Number, segment.Segment.Label, segment.Segment.AlgorithmType, segment.Segment.AlgorithmName));
        Assert.Equal(new CodedConcept("T-D0050", "SRT", "Tissue"), segment.Segment.Type);
        Assert.Equal(1, segment.Value);
        Assert.Equal(expected, segment.Slices);
        Assert.Equal(0, result.OverlapVoxels);

        var geometry = result.LabelMap.Geometry;
        Assert.Equal((64, 64, Slices), (geometry.Columns, geometry.Rows, geometry.Slices));
        for (var k = 0; k < Slices; k++)
        {
            var slice = result.LabelMap.SliceBytes(k).ToArray();
            var voxels = Enumerable.Range(0, slice.Length).Where(i => slice[i] != 0).ToList();
            Assert.All(voxels, i => Assert.Equal(1, slice[i]));
            if (!expected.Contains(k))
            {
                Assert.Empty(voxels);
                continue;
            }
            // Each stroke is a short horizontal drag of a 3 mm brush on 2 mm pixels, painted inside the phantom
            // near the centre: wider than tall, so rows and columns are not swapped and nothing is mirrored out.
            var columns = voxels.Select(i => i % geometry.Columns).ToList();
            var rows = voxels.Select(i => i / geometry.Columns).ToList();
            var width = columns.Max() - columns.Min() + 1;
            var height = rows.Max() - rows.Min() + 1;
            Assert.True(width > height, $"slice {k}: the stroke is {width} wide and {height} tall; a horizontal stroke must be wider");
            Assert.InRange(columns.Average(), 16, 48);
            Assert.InRange(rows.Average(), 16, 48);
        }
        Assert.Equal(segment.VoxelCount, result.LabelMap.Data.Count(v => v != 0));
    }
}
