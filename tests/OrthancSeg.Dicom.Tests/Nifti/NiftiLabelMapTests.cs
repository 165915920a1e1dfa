using OrthancSeg.Dicom.Nifti;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Tests.Nifti;

public sealed class NiftiLabelMapTests
{
    private static NiftiImage RoundTrip(Volume volume)
    {
        using var stream = new MemoryStream();
        NiftiWriter.Write(volume, stream, compress: true);
        stream.Position = 0;
        return NiftiReader.Read(stream);
    }

    [Fact]
    public void A_label_map_written_on_the_grid_comes_back_on_the_series_exact_geometry_with_its_voxels()
    {
        var grid = TestVolumes.Oblique(12, 10, 5);
        var labels = TestVolumes.Random(grid, VoxelType.UInt8, seed: 7);

        var onGrid = NiftiLabelMap.OnGrid(RoundTrip(labels), grid, "The prediction");

        Assert.Same(grid, onGrid.Geometry);
        Assert.Equal(labels.Data, onGrid.Data);
    }

    [Fact]
    public void A_label_map_on_another_grid_is_refused_naming_both_grids()
    {
        var grid = TestVolumes.Axial(12, 10, 5);
        var shifted = new VolumeGeometry(12, 10, 5, grid.Spacing, grid.Origin + new Vector3D(0, 0, 2.5), grid.RowDirection, grid.ColumnDirection,
            grid.SliceDirection);
        var resized = TestVolumes.Axial(12, 10, 6);

        var offset = Assert.Throws<DicomException>(() => NiftiLabelMap.OnGrid(RoundTrip(Volume.Allocate(shifted, VoxelType.UInt8)), grid, "The prediction"));
        var bigger = Assert.Throws<DicomException>(() => NiftiLabelMap.OnGrid(RoundTrip(Volume.Allocate(resized, VoxelType.UInt8)), grid, "The label map"));

        Assert.StartsWith("The prediction does not lie on the image grid", offset.Message, StringComparison.Ordinal);
        Assert.Contains("origin -187.629,-201.5,125.957", offset.Message, StringComparison.Ordinal);
        Assert.Contains("origin -187.629,-201.5,123.457", offset.Message, StringComparison.Ordinal);
        Assert.Contains("12×10×6", bigger.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Values_a_label_map_cannot_hold_are_refused()
    {
        var grid = TestVolumes.Axial(4, 4, 2);
        var image = Volume.Allocate(grid, VoxelType.Int16);
        image.AsInt16()[3] = 300;

        var refused = Assert.Throws<DicomException>(() => NiftiLabelMap.OnGrid(RoundTrip(image), grid, "The label map"));

        Assert.StartsWith("The label map is not a label map of values 0..255", refused.Message, StringComparison.Ordinal);
    }
}
