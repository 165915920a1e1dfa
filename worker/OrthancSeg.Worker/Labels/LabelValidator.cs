using OrthancSeg.Worker.Cases;

namespace OrthancSeg.Worker.Labels;

/// <summary>What a case offers to check a label against: its slices in order and its grid.</summary>
internal sealed record CaseGrid(IReadOnlyList<string> SopInstanceUids, string? FrameOfReferenceUid, GeometrySummary? Geometry, string? UnusableReason);

/// <summary>How one SEG segment maps into the workflow's label map, as stored in labels.segments.</summary>
internal sealed record SegmentMapping(int SegmentNumber, string SegmentLabel, int LabelValue, string? LabelName, SegmentMatch Match, int PaintedFrames);

/// <summary>The verdict on a SEG as a label of one case.</summary>
internal sealed record LabelAssessment(bool Accepted, string? RejectionReason, string Source, IReadOnlyList<SegmentMapping> Segments, IReadOnlyList<int> PaintedSlices);

/// <summary>
/// Decides whether a SEG is a usable label of a case. Only geometry and SOP Instance UIDs of the image
/// series are needed, never its pixels. Every rejection says what is wrong and what to do about it.
/// </summary>
internal static class LabelValidator
{
    private const double OrientationTolerance = 1e-3;

    public static LabelAssessment Assess(SegmentationContent seg, CaseGrid grid, SegmentNameMapper mapper, string workflowName)
    {
        ArgumentNullException.ThrowIfNull(seg);
        ArgumentNullException.ThrowIfNull(grid);
        ArgumentNullException.ThrowIfNull(mapper);
        var source = seg.Segments.Count > 0 && seg.Segments.All(s => string.Equals(s.AlgorithmType, "AUTOMATIC", StringComparison.OrdinalIgnoreCase))
            ? "model"
            : "manual";

        var uidIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < grid.SopInstanceUids.Count; i++)
        {
            uidIndex[grid.SopInstanceUids[i]] = i;
        }

        var paintedFramesPerSegment = new Dictionary<int, int>();
        var paintedSlices = new SortedSet<int>();
        var strayFrames = new List<string>();
        foreach (var frame in seg.Frames)
        {
            foreach (var number in frame.PaintedSegments)
            {
                paintedFramesPerSegment[number] = paintedFramesPerSegment.GetValueOrDefault(number) + 1;
            }
            int? slice = frame.ReferencedSopInstanceUid is { } uid && uidIndex.TryGetValue(uid, out var byUid) ? byUid
                : frame.Position is { } position && grid.Geometry is { } geometry ? geometry.SliceIndexAt(position)
                : null;
            if (slice is null)
            {
                strayFrames.Add(frame.ReferencedSopInstanceUid is { } stray
                    ? $"frame {frame.Index + 1} references instance {stray}"
                    : $"frame {frame.Index + 1} has no source reference and no position on the series' grid");
            }
            else if (frame.PaintedSegments.Count > 0)
            {
                paintedSlices.Add(slice.Value);
            }
        }

        var mappings = seg.Segments
            .Select(s =>
            {
                var match = mapper.Map(s.Label);
                return new SegmentMapping(s.Number, s.Label, match.LabelValue, match.LabelName, match.Match, paintedFramesPerSegment.GetValueOrDefault(s.Number));
            })
            .ToList();

        string? Reject()
        {
            if (seg.Segments.Count == 0)
            {
                return "the SEG declares no segments: add at least one segment, paint it and save again";
            }
            var unknown = mappings.Where(m => m.Match == SegmentMatch.None).Select(m => $"'{m.SegmentLabel}'").ToList();
            if (unknown.Count > 0)
            {
                return $"segment name{(unknown.Count == 1 ? "" : "s")} {string.Join(", ", unknown)} match{(unknown.Count == 1 ? "es" : "")} no label of workflow {workflowName}: "
                    + $"rename {(unknown.Count == 1 ? "it" : "them")} to one of {mapper.DescribeLabels()} and save again";
            }
            var undeclared = paintedFramesPerSegment.Keys.Where(n => seg.Segments.All(s => s.Number != n)).Order().ToList();
            if (undeclared.Count > 0)
            {
                return $"pixel value{(undeclared.Count == 1 ? "" : "s")} {string.Join(", ", undeclared)} of the label map {(undeclared.Count == 1 ? "is" : "are")} not a declared segment: the SEG is inconsistent";
            }
            if (grid.Geometry is null)
            {
                return $"the case's series cannot be used as a volume ({grid.UnusableReason ?? "no geometry"}), so no label can be checked against it";
            }
            var geometry = grid.Geometry;
            if (seg.Rows != geometry.Rows || seg.Columns != geometry.Columns)
            {
                return $"wrong geometry: the SEG's frames are {seg.Columns} × {seg.Rows} pixels but the series' slices are {geometry.Columns} × {geometry.Rows}; segment on this series itself, not a resampled copy";
            }
            if (seg.Orientation is { Count: 6 } orientation && orientation.Zip(geometry.Orientation).Any(p => Math.Abs(p.First - p.Second) > OrientationTolerance))
            {
                return "wrong geometry: the SEG's plane orientation differs from the series' ImageOrientationPatient; segment on this series itself, not a reformatted view";
            }
            if (seg.FrameOfReferenceUid is { } segFrame && grid.FrameOfReferenceUid is { } caseFrame && segFrame != caseFrame)
            {
                return $"wrong geometry: the SEG's FrameOfReferenceUID {segFrame} is not the series' {caseFrame}";
            }
            if (strayFrames.Count > 0)
            {
                var shown = string.Join("; ", strayFrames.Take(3)) + (strayFrames.Count > 3 ? $"; and {strayFrames.Count - 3} more" : "");
                return $"references slices not in the series ({grid.SopInstanceUids.Count} slices): {shown}";
            }
            if (paintedSlices.Count == 0)
            {
                return "empty: no voxel is painted in any segment; paint at least one slice and save again";
            }
            return null;
        }

        var reason = Reject();
        return new LabelAssessment(reason is null, reason, source, mappings, [.. paintedSlices]);
    }
}
