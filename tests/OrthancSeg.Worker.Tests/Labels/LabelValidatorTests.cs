using OrthancSeg.Dicom;
using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Tests.Support;
using OrthancSeg.Worker.Cases;
using OrthancSeg.Worker.Labels;

namespace OrthancSeg.Worker.Tests.Labels;

public sealed class LabelValidatorTests
{
    private static readonly SegmentNameMapper Mapper = new([new(1, "liver", []), new(2, "tumor", ["lesion"])], allowOhifDefaultNames: true);

    private static (TestSeries Series, CaseGrid Grid) Case(int slices = 5, int rows = 7, int columns = 9)
    {
        var series = new TestSeries(slices, rows, columns);
        var headers = series.Files().Select(f => new SliceHeader(
            f.Dataset.GetString(DicomTags.SOPInstanceUID)!,
            f.Dataset.GetDoubles(DicomTags.ImagePositionPatient) is var p ? new(p[0], p[1], p[2]) : null,
            f.Dataset.GetDoubles(DicomTags.ImageOrientationPatient), rows, columns,
            f.Dataset.GetDoubles(DicomTags.PixelSpacing), series.FrameOfReferenceUid)).Reverse().ToList();
        var ordered = SeriesGeometry.Order(headers);
        return (series, new CaseGrid(ordered.SopInstanceUids, ordered.FrameOfReferenceUid, ordered.Geometry, ordered.Problem,
            series.StudyInstanceUid, series.SeriesInstanceUid));
    }

    private static LabelAssessment Assess(DicomFile seg, CaseGrid grid)
    {
        var file = DicomReader.Read(DicomWriter.ToBytes(seg));
        return LabelValidator.Assess(SegmentationReader.Describe(file), file, grid, Mapper, "liver-ct");
    }

    [Fact]
    public void Binary_seg_with_known_names_is_accepted_with_its_painted_slices()
    {
        var (series, grid) = Case();
        var result = Assess(series.Seg([new(1, "Liver"), new(2, "lesion")], [new(1, 1), new(3, 1), new(3, 2)], author: "Doe^Jane"), grid);
        Assert.True(result.Accepted, result.RejectionReason);
        Assert.Equal([1, 3], result.PaintedSlices);
        Assert.Equal("manual", result.Source);
        Assert.Equal([(1, 1, SegmentMatch.Name, 2), (2, 2, SegmentMatch.Synonym, 1)],
            result.Segments.Select(s => (s.SegmentNumber, s.LabelValue, s.Match, s.PaintedFrames)));
    }

    [Fact]
    public void Ohif_labelmap_with_default_names_is_accepted_and_records_how_names_matched()
    {
        var (series, grid) = Case();
        var result = Assess(series.Seg([new(1, "Segment 1"), new(2, "Segment 2")], [new(0, 1), new(4, 2)], labelMap: true), grid);
        Assert.True(result.Accepted, result.RejectionReason);
        Assert.Equal([0, 4], result.PaintedSlices);
        Assert.All(result.Segments, s => Assert.Equal(SegmentMatch.OhifDefaultName, s.Match));
    }

    [Fact]
    public void Unknown_segment_names_are_rejected_listing_the_workflow_labels()
    {
        var (series, grid) = Case();
        var result = Assess(series.Seg([new(1, "kidney")], [new(1, 1)]), grid);
        Assert.False(result.Accepted);
        Assert.Contains("'kidney'", result.RejectionReason, StringComparison.Ordinal);
        Assert.Contains("liver (1), tumor (2; also: lesion)", result.RejectionReason, StringComparison.Ordinal);
    }

    [Fact]
    public void Seg_without_segments_is_rejected()
    {
        var (series, grid) = Case();
        var result = Assess(series.Seg([], [new(1, 1)]), grid);
        Assert.False(result.Accepted);
        Assert.Contains("no segments", result.RejectionReason, StringComparison.Ordinal);
    }

    [Fact]
    public void Seg_on_another_grid_size_is_rejected_as_wrong_geometry()
    {
        var (series, grid) = Case();
        var result = Assess(series.Seg([new(1, "liver")], [new(1, 1)], rows: 4, columns: 4), grid);
        Assert.False(result.Accepted);
        Assert.Contains("frames are 4×4 (Rows×Columns) but the series images are 7×9", result.RejectionReason, StringComparison.Ordinal);
    }

    [Fact]
    public void Seg_referencing_slices_outside_the_series_is_rejected()
    {
        var (series, grid) = Case();
        var result = Assess(series.Seg([new(1, "liver")], [new(9, 1)], referencedSop: _ => "1.2.3.999"), grid);
        Assert.False(result.Accepted);
        Assert.Contains("1.2.3.999, which is not an image of series", result.RejectionReason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_frame_that_references_an_unknown_instance_is_refused_even_where_its_position_fits()
    {
        // The reference says which image was segmented; a position that happens to fit does not override it (the export refuses it too).
        var (series, grid) = Case();
        var result = Assess(series.Seg([new(1, "liver")], [new(2, 1)], referencedSop: _ => "1.2.3.998"), grid);
        Assert.False(result.Accepted);
        Assert.Contains("1.2.3.998", result.RejectionReason, StringComparison.Ordinal);
    }

    [Fact]
    public void Frames_without_references_are_placed_by_position()
    {
        var (series, grid) = Case();
        var seg = series.Seg([new(1, "liver")], [new(2, 1)]);
        foreach (var frame in seg.Dataset.GetSequence(DicomTags.PerFrameFunctionalGroupsSequence))
        {
            frame.Remove(DicomTags.DerivationImageSequence);
        }
        var result = Assess(seg, grid);
        Assert.True(result.Accepted, result.RejectionReason);
        Assert.Equal([2], result.PaintedSlices);
    }

    [Fact]
    public void A_frame_at_a_position_that_is_not_finite_is_refused_not_placed_on_the_first_slice()
    {
        var (series, grid) = Case();
        var seg = series.Seg([new(1, "liver")], [new(2, 1)]);
        foreach (var frame in seg.Dataset.GetSequence(DicomTags.PerFrameFunctionalGroupsSequence))
        {
            frame.Remove(DicomTags.DerivationImageSequence);
            frame.GetFirstItem(DicomTags.PlanePositionSequence)!.SetString(DicomTags.ImagePositionPatient, DicomVR.DS, "NaN\\0\\100");
        }
        var result = Assess(seg, grid);
        Assert.False(result.Accepted);
        Assert.Contains("not a finite position", result.RejectionReason, StringComparison.Ordinal);
    }

    [Fact]
    public void Seg_with_nothing_painted_is_rejected_as_empty()
    {
        var (series, grid) = Case();
        var result = Assess(series.Seg([new(1, "liver")], [new(1, 1)], blank: true), grid);
        Assert.False(result.Accepted);
        Assert.Contains("marks no voxel", result.RejectionReason, StringComparison.Ordinal);
    }

    [Fact]
    public void Labelmap_values_that_are_no_declared_segment_are_rejected()
    {
        var (series, grid) = Case();
        var result = Assess(series.Seg([new(1, "liver")], [new(1, 9)], labelMap: true), grid);
        Assert.False(result.Accepted);
        Assert.Contains("pixel value 9 on slice 1 is no SegmentNumber", result.RejectionReason, StringComparison.Ordinal);
    }

    [Fact]
    public void Automatic_segments_make_a_model_label()
    {
        var (series, grid) = Case();
        var result = Assess(series.Seg([new(1, "liver", "AUTOMATIC")], [new(1, 1)]), grid);
        Assert.Equal("model", result.Source);
    }

    [Fact]
    public void Two_segs_saved_within_one_second_are_ordered_by_their_content_time()
    {
        var (series, _) = Case();
        DicomFile At(string time)
        {
            var seg = series.Seg([new(1, "liver")], [new(1, 1)]);
            seg.Dataset.SetString(DicomTags.ContentDate, DicomVR.DA, "20261126");
            seg.Dataset.SetString(DicomTags.ContentTime, DicomVR.TM, time);
            return seg;
        }
        var first = SegmentationReader.Describe(At("101500.25"));
        var second = SegmentationReader.Describe(At("101500.750000"));
        Assert.Equal(new DateTimeOffset(2026, 11, 26, 10, 15, 0, 250, TimeSpan.Zero), first.ContentTime);
        Assert.Equal(new DateTimeOffset(2026, 11, 26, 10, 15, 0, 750, TimeSpan.Zero), second.ContentTime);
    }

    [Fact]
    public void A_file_that_is_not_a_seg_is_refused_with_its_sop_class()
    {
        var (series, _) = Case();
        var error = Assert.Throws<DicomException>(() => SegmentationReader.Describe(series.Files().First()));
        Assert.Contains(SopClasses.CTImage, error.Message, StringComparison.Ordinal);
    }
}
