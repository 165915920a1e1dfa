using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Segmentation;

/// <summary>What one SEG segment became in the label map.</summary>
/// <param name="Value">The label value the mapping gave it.</param>
/// <param name="VoxelCount">Voxels the segment marks (before overlaps with other segments are resolved).</param>
/// <param name="Slices">Indices of the sorted slices it paints, ascending.</param>
/// <param name="Frames">Frames of the SEG that mark at least one of its voxels.</param>
public sealed record SegmentSummary(SegmentInfo Segment, byte Value, long VoxelCount, IReadOnlyList<int> Slices, int Frames);

/// <summary>A SEG rasterised onto its series' grid.</summary>
/// <param name="LabelMap">UInt8 voxels on exactly the series grid; 0 = background.</param>
/// <param name="Segments">Every mapped segment of the SEG, in SegmentNumber order, painted or not.</param>
/// <param name="OverlapVoxels">Voxels claimed by segments with different label values (resolved by <see cref="SegmentationReader"/>'s rule).</param>
/// <param name="SegmentationType">BINARY, FRACTIONAL or LABELMAP.</param>
public sealed record LabelMapResult(
    Volume LabelMap,
    IReadOnlyList<SegmentSummary> Segments,
    long OverlapVoxels,
    string SegmentationType,
    IReadOnlyList<string> Warnings);
