using OrthancSeg.Dicom;
using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Dicom.Volumes;
using OrthancSeg.Worker.Cases;

namespace OrthancSeg.Worker.Labels;

/// <summary>What a case offers to check a label against: its slices in order, its grid, and which series it is.</summary>
internal sealed record CaseGrid(
    IReadOnlyList<string> SopInstanceUids,
    string? FrameOfReferenceUid,
    GeometrySummary? Geometry,
    string? UnusableReason,
    string StudyInstanceUid,
    string SeriesInstanceUid)
{
    /// <summary>The grid the SEG reader places frames on: slices evenly along the normal from the first, as the case recorded them.</summary>
    public SeriesGrid? ToSeriesGrid()
    {
        if (Geometry is not { } g)
        {
            return null;
        }
        var origin = new Vector3D(g.Origin[0], g.Origin[1], g.Origin[2]);
        var positions = Enumerable.Range(0, g.Slices).Select(k => origin + (g.Normal * (k * g.Spacing[2]))).ToList();
        return new SeriesGrid(
            new VolumeGeometry(g.Columns, g.Rows, g.Slices, new Vector3D(g.Spacing[0], g.Spacing[1], g.Spacing[2] > 0 ? g.Spacing[2] : 1),
                origin, g.RowDirection, g.ColumnDirection, g.Normal),
            SopInstanceUids, positions, FrameOfReferenceUid ?? "", StudyInstanceUid, SeriesInstanceUid);
    }
}

/// <summary>How one SEG segment maps into the workflow's label map, as stored in labels.segments.</summary>
internal sealed record SegmentMapping(int SegmentNumber, string SegmentLabel, int LabelValue, string? LabelName, SegmentMatch Match, int PaintedFrames);

/// <summary>The verdict on a SEG as a label of one case.</summary>
internal sealed record LabelAssessment(bool Accepted, string? RejectionReason, string Source, IReadOnlyList<SegmentMapping> Segments, IReadOnlyList<int> PaintedSlices);

/// <summary>
/// Decides whether a SEG is a usable label of a case: its segment names must be the workflow's, and the library's
/// <see cref="SegmentationReader"/> (the one the dataset export uses) must place it on the case's grid, so a label
/// accepted here is one the export reads. Only the case's geometry and SOP Instance UIDs are needed, never its pixels.
/// Every rejection says what is wrong and what to do about it.
/// </summary>
internal static class LabelValidator
{
    public static LabelAssessment Assess(SegmentationDescription seg, DicomFile file, CaseGrid grid, SegmentNameMapper mapper, string workflowName)
    {
        ArgumentNullException.ThrowIfNull(seg);
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(grid);
        ArgumentNullException.ThrowIfNull(mapper);
        var source = seg.Segments.Count > 0 && seg.Segments.All(s => string.Equals(s.AlgorithmType, "AUTOMATIC", StringComparison.OrdinalIgnoreCase))
            ? "model"
            : "manual";
        var mappings = seg.Segments
            .Select(s =>
            {
                var match = mapper.Map(s.Label);
                return new SegmentMapping(s.Number, s.Label, match.LabelValue, match.LabelName, match.Match, 0);
            })
            .ToList();

        LabelAssessment Rejected(string reason) => new(false, reason, source, mappings, []);

        if (seg.Segments.Count == 0)
        {
            return Rejected("the SEG declares no segments: add at least one segment, paint it and save again");
        }
        var unknown = mappings.Where(m => m.Match == SegmentMatch.None).Select(m => $"'{m.SegmentLabel}'").ToList();
        if (unknown.Count > 0)
        {
            return Rejected($"segment name{(unknown.Count == 1 ? "" : "s")} {string.Join(", ", unknown)} match{(unknown.Count == 1 ? "es" : "")} no label of workflow {workflowName}: "
                + $"rename {(unknown.Count == 1 ? "it" : "them")} to one of {mapper.DescribeLabels()} and save again");
        }
        if (grid.ToSeriesGrid() is not { } seriesGrid)
        {
            return Rejected($"the case's series cannot be used as a volume ({grid.UnusableReason ?? "no geometry"}), so no label can be checked against it");
        }

        // The reader maps segments by name: every segment here matched a label of the workflow, under its own name.
        var byName = mappings
            .Where(m => m.SegmentLabel.Trim().Length > 0)
            .GroupBy(m => m.SegmentLabel.Trim(), StringComparer.OrdinalIgnoreCase)
            .Select(group => new KeyValuePair<string, byte>(group.Key, (byte)group.First().LabelValue));
        LabelMapResult result;
        try
        {
            result = SegmentationReader.Read(file, seriesGrid, new OrthancSeg.Dicom.Segmentation.SegmentMapping(byName));
        }
        catch (DicomException e)
        {
            return Rejected(e.Message);
        }
        var frames = result.Segments.ToDictionary(s => s.Segment.Number, s => s.Frames);
        return new LabelAssessment(true, null, source,
            mappings.Select(m => m with { PaintedFrames = frames.GetValueOrDefault(m.SegmentNumber) }).ToList(),
            [.. result.Segments.SelectMany(s => s.Slices).Distinct().Order()]);
    }
}
