namespace OrthancSeg.Dicom.Volumes;

/// <summary>
/// The sorted-slice grid of one series: what a SEG is mapped onto and what a SEG written from a label map
/// refers to. It holds no voxels, so it can be kept per case long after the image volume is gone.
/// </summary>
/// <param name="Geometry">The voxel grid; slice k of the volume is the instance <c>SopInstanceUids[k]</c>.</param>
/// <param name="SopInstanceUids">SOPInstanceUIDs in slice order (ascending along the slice normal).</param>
/// <param name="SlicePositions">ImagePositionPatient of each sorted slice, as the instances state it.</param>
public sealed record SeriesGrid(
    VolumeGeometry Geometry,
    IReadOnlyList<string> SopInstanceUids,
    IReadOnlyList<Vector3D> SlicePositions,
    string FrameOfReferenceUid,
    string StudyInstanceUid,
    string SeriesInstanceUid);

/// <summary>A series turned into one volume, with the slice order and identity needed to map SEGs onto it.</summary>
/// <param name="Summary">One line for people: dimensions, spacing, plane and voxel type.</param>
/// <param name="Warnings">What was dropped or left as is (localizers, MONOCHROME1) but did not prevent the volume.</param>
public sealed record SeriesVolume(Volume Volume, SeriesGrid Grid, string Summary, IReadOnlyList<string> Warnings)
{
    public IReadOnlyList<string> SopInstanceUids => Grid.SopInstanceUids;

    public string FrameOfReferenceUid => Grid.FrameOfReferenceUid;

    public string StudyInstanceUid => Grid.StudyInstanceUid;

    public string SeriesInstanceUid => Grid.SeriesInstanceUid;
}
