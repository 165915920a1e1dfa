namespace OrthancSeg.Dicom.Volumes;

/// <summary>
/// The voxel grid of a volume in DICOM's native order: i = column index, j = row index, k = slice index
/// (slices sorted ascending along the normal). Directions are unit vectors in the patient (LPS) system;
/// spacings are millimetres. Voxel (i, j, k) lies at Origin + i·ΔC·RowDirection + j·ΔR·ColumnDirection + k·ΔS·SliceDirection.
/// </summary>
public sealed record VolumeGeometry
{
    public VolumeGeometry(int columns, int rows, int slices, Vector3D spacing, Vector3D origin,
        Vector3D rowDirection, Vector3D columnDirection, Vector3D sliceDirection)
    {
        if (columns <= 0 || rows <= 0 || slices <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(columns), $"A volume needs positive dimensions, not {columns}×{rows}×{slices}");
        }
        Columns = columns;
        Rows = rows;
        Slices = slices;
        Spacing = spacing;
        Origin = origin;
        RowDirection = rowDirection;
        ColumnDirection = columnDirection;
        SliceDirection = sliceDirection;
    }

    public int Columns { get; }

    public int Rows { get; }

    public int Slices { get; }

    /// <summary>(between columns = PixelSpacing[1], between rows = PixelSpacing[0], between slices).</summary>
    public Vector3D Spacing { get; }

    /// <summary>ImagePositionPatient of slice 0 (LPS, mm).</summary>
    public Vector3D Origin { get; }

    /// <summary>Direction of increasing column index (first half of ImageOrientationPatient).</summary>
    public Vector3D RowDirection { get; }

    /// <summary>Direction of increasing row index (second half of ImageOrientationPatient).</summary>
    public Vector3D ColumnDirection { get; }

    /// <summary>Direction of increasing slice index (RowDirection × ColumnDirection for a right-handed grid).</summary>
    public Vector3D SliceDirection { get; }

    public long VoxelCount => (long)Columns * Rows * Slices;

    public int SliceVoxelCount => Columns * Rows;

    /// <summary>The 4×4 voxel → LPS matrix, row-major.</summary>
    public double[,] LpsAffine()
    {
        var a = new double[4, 4];
        Vector3D[] columns = [RowDirection * Spacing.X, ColumnDirection * Spacing.Y, SliceDirection * Spacing.Z, Origin];
        for (var c = 0; c < 4; c++)
        {
            a[0, c] = columns[c].X;
            a[1, c] = columns[c].Y;
            a[2, c] = columns[c].Z;
        }
        a[3, 3] = 1;
        return a;
    }

    /// <summary>The 4×4 voxel → RAS matrix (NIfTI's sform): LPS with the x and y rows negated.</summary>
    public double[,] RasAffine()
    {
        var a = LpsAffine();
        for (var c = 0; c < 4; c++)
        {
            a[0, c] = -a[0, c];
            a[1, c] = -a[1, c];
        }
        return a;
    }

    /// <summary>The LPS position of voxel (i, j, k).</summary>
    public Vector3D PositionOf(double i, double j, double k) =>
        Origin + RowDirection * (i * Spacing.X) + ColumnDirection * (j * Spacing.Y) + SliceDirection * (k * Spacing.Z);

    /// <summary>True when both grids are the same within <paramref name="toleranceMm"/> (positions) and 1e-4 (directions).</summary>
    public bool SameGridAs(VolumeGeometry other, double toleranceMm = 1e-3)
    {
        ArgumentNullException.ThrowIfNull(other);
        return Columns == other.Columns && Rows == other.Rows && Slices == other.Slices
            && (Spacing - other.Spacing).Length <= toleranceMm
            && (Origin - other.Origin).Length <= toleranceMm
            && (RowDirection - other.RowDirection).Length <= 1e-4
            && (ColumnDirection - other.ColumnDirection).Length <= 1e-4
            && (SliceDirection - other.SliceDirection).Length <= 1e-4;
    }
}
