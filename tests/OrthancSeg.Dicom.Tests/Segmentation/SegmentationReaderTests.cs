using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Dicom.Tests.Volumes;
using OrthancSeg.Dicom.Volumes;
using static OrthancSeg.Dicom.Tests.Segmentation.SyntheticSeg;

namespace OrthancSeg.Dicom.Tests.Segmentation;

public sealed class SegmentationReaderTests
{
    // 5 rows × 7 columns = 35 pixels per frame: not a multiple of 8, so packing mistakes show.
    private static readonly SeriesGrid Grid = SeriesVolumeBuilder.Build(SyntheticSeries.Create(5, 7, SyntheticSeries.AxialPositions(0, 2, 4, 6, 8, 10))).Grid;
    private static readonly SegmentMapping LiverTumor = SegmentMapping.Parse("liver=1,tumor=2");
    private static readonly (int, string)[] TwoSegments = [(1, "Liver"), (2, "Tumor")];

    private static byte At(LabelMapResult result, int slice, int row, int column) =>
        result.LabelMap.Data[(slice * 35) + (row * 7) + column];

    private static LabelMapResult Read(DicomDataset seg, SegmentMapping? mapping = null) =>
        SegmentationReader.Read(SyntheticSeg.File(seg), Grid, mapping ?? LiverTumor);

    private static DicomException Refused(DicomDataset seg, SegmentMapping? mapping = null) =>
        Assert.Throws<DicomException>(() => Read(seg, mapping));

    private static List<Frame> SparseSegmentMajor() =>
    [
        new(1, 1, Pixels(Grid, 1, (0, 0), (4, 6))),
        new(1, 3, Pixels(Grid, 1, (2, 3))),
        new(2, 3, Pixels(Grid, 1, (2, 4), (3, 4))),
        new(2, 5, Pixels(Grid, 1, (4, 0))),
    ];

    private static void AssertSparseSegmentMajor(LabelMapResult result)
    {
        Assert.Equal(1, At(result, 1, 0, 0));
        Assert.Equal(1, At(result, 1, 4, 6));
        Assert.Equal(1, At(result, 3, 2, 3));
        Assert.Equal(2, At(result, 3, 2, 4));
        Assert.Equal(2, At(result, 3, 3, 4));
        Assert.Equal(2, At(result, 5, 4, 0));
        Assert.Equal(6, result.LabelMap.Data.Count(v => v != 0));
        Assert.Equal(Grid.Geometry, result.LabelMap.Geometry);
    }

    [Fact]
    public void Binary_seg_with_sparse_segment_major_frames_lands_on_the_referenced_slices()
    {
        var result = Read(Create(Grid, "BINARY", TwoSegments, SparseSegmentMajor()));

        AssertSparseSegmentMajor(result);
        var liver = result.Segments.Single(s => s.Segment.Label == "Liver");
        Assert.Equal((1, 3L), (liver.Value, liver.VoxelCount));
        Assert.Equal([1, 3], liver.Slices);
        var tumor = result.Segments.Single(s => s.Segment.Label == "Tumor");
        Assert.Equal((2, 3L), (tumor.Value, tumor.VoxelCount));
        Assert.Equal([3, 5], tumor.Slices);
        Assert.Equal("MANUAL", tumor.Segment.AlgorithmType);
        Assert.Equal(new CodedConcept("T-D0050", "SRT", "Tissue"), tumor.Segment.Type);
        Assert.Equal(0, result.OverlapVoxels);
        Assert.Equal("BINARY", result.SegmentationType);
    }

    [Fact]
    public void Binary_seg_packed_frame_by_frame_like_newer_cornerstone_reads_the_same()
    {
        var result = Read(Create(Grid, "BINARY", TwoSegments, SparseSegmentMajor(), packing: Packing.PerFrameByteAligned));

        AssertSparseSegmentMajor(result);
    }

    [Fact]
    public void Frames_without_references_are_placed_by_position_and_mirrored_frames_flipped_back()
    {
        var frames = SparseSegmentMajor().Select(f => f with { Reference = false }).ToList();

        var result = Read(Create(Grid, "BINARY", TwoSegments, frames, flipColumns: true));

        AssertSparseSegmentMajor(result);
    }

    [Fact]
    public void Fractional_seg_counts_voxels_at_half_the_maximum_or_more()
    {
        var pixels = new byte[35];
        pixels[0] = 255;
        pixels[1] = 128;
        pixels[2] = 127;
        pixels[3] = 10;

        var result = Read(Create(Grid, "FRACTIONAL", [(1, "liver")], [new Frame(1, 2, pixels)]));

        Assert.Equal([1, 1, 0, 0], Enumerable.Range(0, 4).Select(c => At(result, 2, 0, c)).ToArray());
    }

    private static DicomDataset OhifLabelMap()
    {
        // OHIF 3.13: descending z, one frame per painted slice holding both segments, references only.
        var slice4 = Pixels(Grid, 1, (1, 1));
        slice4[(1 * 7) + 2] = 2;
        return Create(Grid, "LABELMAP", [(1, "Segment 1"), (2, "Segment 2")],
            [new Frame(0, 4, slice4), new Frame(0, 0, Pixels(Grid, 2, (4, 6)))], segmentIdentification: false);
    }

    [Fact]
    public void Ohif_labelmap_uses_the_pixel_value_as_segment_number()
    {
        var result = Read(OhifLabelMap(), SegmentMapping.Parse("segment 1=3,Segment 2=1"));

        Assert.Equal(3, At(result, 4, 1, 1));
        Assert.Equal(1, At(result, 4, 1, 2));
        Assert.Equal(1, At(result, 0, 4, 6));
        Assert.Equal(3, result.LabelMap.Data.Count(v => v != 0));
        Assert.Equal([0, 4], result.Segments.Single(s => s.Segment.Number == 2).Slices);
        Assert.Equal("LABELMAP", result.SegmentationType);
    }

    [Fact]
    public void Ohif_labelmap_stored_as_rle_is_decoded()
    {
        var seg = OhifLabelMap();
        var raw = seg[DicomTags.PixelData]!.Value;
        seg.Set(DicomElement.Encapsulated(DicomTags.PixelData, DicomVR.OB,
            [ReadOnlyMemory<byte>.Empty, RleCodec.Encode(raw.Span[..35], 5, 7, 1, 8), RleCodec.Encode(raw.Span[35..70], 5, 7, 1, 8)]));
        var file = new DicomFile(SyntheticSeries.Meta(TransferSyntaxes.RleLossless), seg);

        var result = SegmentationReader.Read(file, Grid, SegmentMapping.Parse("segment 1=3,Segment 2=1"));

        Assert.Equal(3, At(result, 4, 1, 1));
        Assert.Equal(1, At(result, 0, 4, 6));
    }

    [Fact]
    public void Overlapping_segments_keep_the_higher_label_value_whatever_the_frame_order()
    {
        var frames = new List<Frame> { new(2, 1, Pixels(Grid, 1, (0, 0), (0, 1))), new(1, 1, Pixels(Grid, 1, (0, 1), (0, 2))) };

        var result = Read(Create(Grid, "BINARY", TwoSegments, frames));

        Assert.Equal([2, 2, 1], Enumerable.Range(0, 3).Select(c => At(result, 1, 0, c)).ToArray());
        Assert.Equal(1, result.OverlapVoxels);
        Assert.Equal(2, result.Segments.Single(s => s.Value == 1).VoxelCount);
    }

    [Fact]
    public void Two_frames_of_one_segment_on_one_slice_are_united_and_counted_once()
    {
        var frames = new List<Frame> { new(1, 2, Pixels(Grid, 1, (0, 0), (0, 1))), new(1, 2, Pixels(Grid, 1, (0, 1), (3, 3))) };

        var result = Read(Create(Grid, "BINARY", TwoSegments, frames));

        Assert.Equal(3, result.LabelMap.Data.Count(v => v == 1));
        Assert.Equal(1, At(result, 2, 3, 3));
        Assert.Equal(3, result.Segments.Single(s => s.Value == 1).VoxelCount);
        Assert.Equal([2], result.Segments.Single(s => s.Value == 1).Slices);
    }

    [Fact]
    public void Empty_segment_the_mapping_does_not_know_is_skipped_with_a_warning()
    {
        var result = Read(Create(Grid, "BINARY", [(1, "Liver"), (2, "Segment 2")], [new Frame(1, 0, Pixels(Grid, 1, (0, 0)))]));

        Assert.Single(result.Segments);
        Assert.Contains(result.Warnings, w => w.Contains("'Segment 2'", StringComparison.Ordinal) && w.Contains("empty", StringComparison.Ordinal));
    }

    [Fact]
    public void Other_frame_of_reference_is_refused()
    {
        var seg = Create(Grid, "BINARY", TwoSegments, SparseSegmentMajor());
        seg.SetString(DicomTags.FrameOfReferenceUID, DicomVR.UI, "1.2.3.4");

        Assert.Contains("FrameOfReferenceUID 1.2.3.4", Refused(seg).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Other_rows_and_columns_are_refused()
    {
        var seg = Create(Grid, "BINARY", TwoSegments, SparseSegmentMajor());
        seg.SetUInt16(DicomTags.Rows, 4);

        Assert.Contains("4×7 (Rows×Columns)", Refused(seg).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Reference_to_an_image_outside_the_series_is_refused()
    {
        var seg = Create(Grid, "BINARY", TwoSegments, SparseSegmentMajor());
        seg.GetSequence(DicomTags.PerFrameFunctionalGroupsSequence)[2].GetFirstItem(DicomTags.DerivationImageSequence)!
            .GetFirstItem(DicomTags.SourceImageSequence)!.SetString(DicomTags.ReferencedSOPInstanceUID, DicomVR.UI, "1.2.3.999");

        var message = Refused(seg).Message;

        Assert.Contains("SEG frame 3 references SOPInstanceUID 1.2.3.999", message, StringComparison.Ordinal);
    }

    [Fact]
    public void Frame_between_slices_matches_no_slice_and_is_refused()
    {
        var seg = Create(Grid, "BINARY", TwoSegments, [new Frame(1, 1, Pixels(Grid, 1, (0, 0)), Reference: false)]);
        seg.GetSequence(DicomTags.PerFrameFunctionalGroupsSequence)[0].GetFirstItem(DicomTags.PlanePositionSequence)!
            .SetNumbers(DicomTags.ImagePositionPatient, DicomVR.DS, [-100, -80, 3]);

        var message = Refused(seg).Message;

        Assert.Contains("SEG frame 1 matches no slice", message, StringComparison.Ordinal);
        Assert.Contains("1 mm from the nearest slice", message, StringComparison.Ordinal);
    }

    [Fact]
    public void Segment_the_mapping_does_not_know_is_refused_listing_the_known_names()
    {
        var seg = Create(Grid, "BINARY", [(1, "Liver"), (2, "Spleen")], [new Frame(2, 0, Pixels(Grid, 1, (0, 0)))]);

        var message = Refused(seg).Message;

        Assert.Contains("'Spleen'", message, StringComparison.Ordinal);
        Assert.Contains("known names: liver, tumor", message, StringComparison.Ordinal);
    }

    [Fact]
    public void Segment_can_be_mapped_by_its_type_code()
    {
        var mapping = new SegmentMapping([], [new(new CodedConcept("T-D0050", "SRT", "Tissue"), 4)]);

        var result = Read(Create(Grid, "BINARY", [(1, "Whatever")], [new Frame(1, 0, Pixels(Grid, 1, (0, 0)))]), mapping);

        Assert.Equal(4, At(result, 0, 0, 0));
    }

    [Fact]
    public void Seg_without_segments_is_refused()
    {
        var seg = Create(Grid, "BINARY", [], [new Frame(1, 0, Pixels(Grid, 1, (0, 0)))]);

        Assert.Contains("no segments", Refused(seg).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Seg_that_marks_nothing_is_refused()
    {
        var seg = Create(Grid, "BINARY", TwoSegments, [new Frame(1, 0, new byte[35])]);

        Assert.Contains("marks no voxel", Refused(seg).Message, StringComparison.Ordinal);
    }
}

public sealed class SegmentMappingTests
{
    [Theory]
    [InlineData("liver", "'liver' is not name=value")]
    [InlineData("liver=300", "'liver=300' is not name=value")]
    [InlineData("liver=1,Liver=2", "mapped twice")]
    [InlineData("liver=0", "mapped to 0, which is the background")]
    public void Bad_label_lists_are_refused_saying_what_is_wrong(string text, string expected)
    {
        var e = Assert.ThrowsAny<Exception>(() => SegmentMapping.Parse(text));

        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Labels_resolve_trimmed_and_case_insensitive_before_codes()
    {
        var mapping = new SegmentMapping([new(" Liver ", 1)], [new(new CodedConcept("10200004", "sct", "Liver"), 2)]);

        Assert.Equal((byte)1, mapping.Resolve(new SegmentInfo(1, "LIVER", null, null, new CodedConcept("10200004", "SCT", "Liver"), null, null)));
        Assert.Equal((byte)2, mapping.Resolve(new SegmentInfo(1, "Leber", null, null, new CodedConcept("10200004", "SCT", "Liver"), null, null)));
        Assert.Null(mapping.Resolve(new SegmentInfo(1, "Spleen", null, null, null, null, null)));
    }
}
