using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Worker.Cases;

/// <summary>What the worker needs of one image instance's header to place it in a volume.</summary>
internal sealed record SliceHeader(
    string SopInstanceUid,
    Vector3D? Position,
    IReadOnlyList<double>? Orientation,
    int Rows,
    int Columns,
    IReadOnlyList<double>? PixelSpacing,
    string? FrameOfReferenceUid);

/// <summary>The grid of a case's series as stored in cases.geometry (JSON, snake_case via the serializer options).</summary>
internal sealed record GeometrySummary(int Columns, int Rows, int Slices, double[] Spacing, double[] Origin, double[] Orientation)
{
    public Vector3D RowDirection => new(Orientation[0], Orientation[1], Orientation[2]);

    public Vector3D ColumnDirection => new(Orientation[3], Orientation[4], Orientation[5]);

    public Vector3D Normal => RowDirection.Cross(ColumnDirection).Normalized();
}

/// <summary>The slices of a series in volume order, and its grid or why it has none.</summary>
internal sealed record OrderedSeries(IReadOnlyList<string> SopInstanceUids, string? FrameOfReferenceUid, GeometrySummary? Geometry, string? Problem);

/// <summary>
/// Orders the instances of a series along the slice normal and summarises the grid. A series that
/// cannot be one volume (mixed orientation or size, uneven spacing, no geometry) is still ordered
/// as well as possible, with the problem stated so the case can say why it is unusable.
/// </summary>
internal static class SeriesGeometry
{
    private const double OrientationTolerance = 1e-4;

    public static OrderedSeries Order(IReadOnlyList<SliceHeader> slices)
    {
        ArgumentNullException.ThrowIfNull(slices);
        if (slices.Count == 0)
        {
            return new([], null, null, "the series has no instances");
        }
        var frameOfReference = slices.Select(s => s.FrameOfReferenceUid).FirstOrDefault(u => !string.IsNullOrEmpty(u));
        var first = slices[0];
        if (slices.Any(s => s.Position is null || s.Orientation is not { Count: 6 }))
        {
            return Unordered(slices, frameOfReference, "some instances lack ImagePositionPatient or ImageOrientationPatient");
        }
        var orientation = first.Orientation!;
        if (slices.Any(s => !SameOrientation(s.Orientation!, orientation)))
        {
            return Unordered(slices, frameOfReference, "the instances do not share one ImageOrientationPatient");
        }
        if (slices.Any(s => s.Rows != first.Rows || s.Columns != first.Columns))
        {
            return Unordered(slices, frameOfReference, "the instances do not share one size (Rows × Columns)");
        }
        var row = new Vector3D(orientation[0], orientation[1], orientation[2]);
        var column = new Vector3D(orientation[3], orientation[4], orientation[5]);
        Vector3D normal;
        try
        {
            normal = row.Cross(column).Normalized();
        }
        catch (InvalidOperationException)
        {
            return Unordered(slices, frameOfReference, "ImageOrientationPatient has parallel row and column directions");
        }
        var ordered = slices
            .Select(s => (Slice: s, Distance: s.Position!.Value.Dot(normal)))
            .OrderBy(x => x.Distance)
            .ThenBy(x => x.Slice.SopInstanceUid, StringComparer.Ordinal)
            .ToList();
        var uids = ordered.Select(x => x.Slice.SopInstanceUid).ToList();
        if (first.PixelSpacing is not { Count: 2 } pixelSpacing || pixelSpacing[0] <= 0 || pixelSpacing[1] <= 0)
        {
            return new(uids, frameOfReference, null, "the instances lack a positive PixelSpacing");
        }
        var sliceSpacing = 0.0;
        if (ordered.Count > 1)
        {
            var gaps = ordered.Zip(ordered.Skip(1), (a, b) => b.Distance - a.Distance).ToList();
            if (gaps.Any(g => g < 1e-3))
            {
                return new(uids, frameOfReference, null, "two instances share one slice position (duplicate slices or several stacks in one series)");
            }
            sliceSpacing = gaps.Average();
            // nnU-Net resamples on a regular grid; a gap that differs by more than 1 % (or 0.01 mm) is a missing slice or a tilted stack.
            if (gaps.Any(g => Math.Abs(g - sliceSpacing) > Math.Max(0.01, sliceSpacing * 0.01)))
            {
                return new(uids, frameOfReference, null,
                    $"slice spacing is uneven ({gaps.Min():0.###} to {gaps.Max():0.###} mm): a slice may be missing");
            }
            var offAxis = (ordered[^1].Slice.Position!.Value - ordered[0].Slice.Position!.Value) - (normal * (ordered[^1].Distance - ordered[0].Distance));
            if (offAxis.Length > Math.Max(0.01, sliceSpacing * 0.01 * ordered.Count))
            {
                return new(uids, frameOfReference, null, "the slices are not stacked along their normal (gantry tilt or shear)");
            }
        }
        var origin = ordered[0].Slice.Position!.Value;
        var geometry = new GeometrySummary(first.Columns, first.Rows, ordered.Count,
            [pixelSpacing[1], pixelSpacing[0], sliceSpacing], [origin.X, origin.Y, origin.Z], [.. orientation]);
        return new(uids, frameOfReference, geometry, null);
    }

    private static OrderedSeries Unordered(IReadOnlyList<SliceHeader> slices, string? frameOfReference, string problem) =>
        new(slices.Select(s => s.SopInstanceUid).Order(StringComparer.Ordinal).ToList(), frameOfReference, null, problem);

    private static bool SameOrientation(IReadOnlyList<double> a, IReadOnlyList<double> b) =>
        a.Count == b.Count && a.Zip(b).All(p => Math.Abs(p.First - p.Second) <= OrientationTolerance);
}
