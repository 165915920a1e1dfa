using System.Globalization;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Nifti;

/// <summary>
/// A NIfTI label map (an nnU-Net prediction, a map drawn in 3D Slicer or ITK-SNAP) taken onto a series' grid: it must lie on exactly that
/// grid (size, spacing, origin, directions), and its values must be whole numbers 0..255. Anything else is refused with the reason, naming both
/// grids, because a label map on another grid would paint the wrong voxels.
/// </summary>
public static class NiftiLabelMap
{
    /// <summary>Positions and spacings may differ by this much (NIfTI stores them as float32; a resampled map differs by far more).</summary>
    public const double ToleranceMm = 0.01;

    /// <param name="what">What the map is, for the error ("the prediction", "the label map").</param>
    public static Volume OnGrid(NiftiImage image, VolumeGeometry grid, string what)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(grid);
        if (!image.Geometry.SameGridAs(grid, ToleranceMm))
        {
            throw new DicomException($"{what} does not lie on the image grid: it is {Describe(image.Geometry)}, the series is {Describe(grid)}");
        }
        Volume labels;
        try
        {
            labels = image.ToVolume(VoxelType.UInt8);
        }
        catch (DicomException e)
        {
            throw new DicomException($"{what} is not a label map of values 0..255: {e.Message}", e);
        }
        // The series' own geometry (exact, not NIfTI's float32 copy) is what the SEG references.
        return new Volume(grid, VoxelType.UInt8, labels.Data);
    }

    /// <summary>Size, spacing, origin and directions, for people comparing two grids.</summary>
    public static string Describe(VolumeGeometry g)
    {
        ArgumentNullException.ThrowIfNull(g);
        return string.Create(CultureInfo.InvariantCulture,
            $"{g.Columns}×{g.Rows}×{g.Slices}, spacing {g.Spacing.X:0.###}×{g.Spacing.Y:0.###}×{g.Spacing.Z:0.###} mm, origin {g.Origin.X:0.###},{g.Origin.Y:0.###},{g.Origin.Z:0.###}, "
            + $"directions {V(g.RowDirection)} {V(g.ColumnDirection)} {V(g.SliceDirection)}");

        static string V(Vector3D v) => string.Create(CultureInfo.InvariantCulture, $"({v.X:0.###},{v.Y:0.###},{v.Z:0.###})");
    }
}
