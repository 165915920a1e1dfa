using OrthancSeg.Dicom.Volumes;
using OrthancSeg.Worker.Cases;

namespace OrthancSeg.Worker.Tests.Cases;

public sealed class SeriesGeometryTests
{
    private static SliceHeader Slice(string uid, double z, double x = 0) =>
        new(uid, new Vector3D(x, 0, z), [1, 0, 0, 0, 1, 0], 512, 256, [0.7, 0.8], "1.2.3");

    [Fact]
    public void Slices_are_ordered_by_position_along_the_normal_not_by_arrival()
    {
        var ordered = SeriesGeometry.Order([Slice("c", 10), Slice("a", 0), Slice("b", 5)]);
        Assert.Null(ordered.Problem);
        Assert.Equal(["a", "b", "c"], ordered.SopInstanceUids);
        var g = ordered.Geometry!;
        Assert.Equal((256, 512, 3), (g.Columns, g.Rows, g.Slices));
        Assert.Equal([0.8, 0.7, 5.0], g.Spacing);
        Assert.Equal([0.0, 0.0, 0.0], g.Origin);
    }

    [Fact]
    public void A_missing_slice_makes_the_series_unusable_with_the_reason()
    {
        var ordered = SeriesGeometry.Order([Slice("a", 0), Slice("b", 5), Slice("d", 15)]);
        Assert.Null(ordered.Geometry);
        Assert.Contains("uneven", ordered.Problem, StringComparison.Ordinal);
        Assert.Equal(["a", "b", "d"], ordered.SopInstanceUids);
    }

    [Fact]
    public void Duplicate_positions_and_sheared_stacks_are_reported()
    {
        Assert.Contains("share one slice position", SeriesGeometry.Order([Slice("a", 0), Slice("b", 0)]).Problem, StringComparison.Ordinal);
        Assert.Contains("not stacked", SeriesGeometry.Order([Slice("a", 0, 0), Slice("b", 5, 1), Slice("c", 10, 2)]).Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_orientation_is_reported()
    {
        var ordered = SeriesGeometry.Order([new SliceHeader("a", null, null, 4, 4, null, null)]);
        Assert.Null(ordered.Geometry);
        Assert.Contains("ImagePositionPatient", ordered.Problem, StringComparison.Ordinal);
    }
}
