using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Tests.Nifti;

/// <summary>Grids and seeded voxel data for the NIfTI tests.</summary>
internal static class TestVolumes
{
    public static readonly Vector3D Spacing = new(0.7421875, 0.8125, 2.5);
    public static readonly Vector3D Origin = new(-187.62890625, -201.5, 123.456789);

    public static VolumeGeometry Axial(int columns, int rows, int slices) =>
        new(columns, rows, slices, Spacing, Origin, new(1, 0, 0), new(0, 1, 0), new(0, 0, 1));

    /// <summary>Rows run head to foot; slices run anterior to posterior (row × column = +y in LPS).</summary>
    public static VolumeGeometry Coronal(int columns, int rows, int slices)
    {
        Vector3D row = new(1, 0, 0), column = new(0, 0, -1);
        return new(columns, rows, slices, Spacing, Origin, row, column, row.Cross(column));
    }

    public static VolumeGeometry Sagittal(int columns, int rows, int slices)
    {
        Vector3D row = new(0, 1, 0), column = new(0, 0, -1);
        return new(columns, rows, slices, Spacing, Origin, row, column, row.Cross(column));
    }

    /// <summary>An axial grid rotated about three axes: no direction is parallel to a patient axis.</summary>
    public static VolumeGeometry Oblique(int columns, int rows, int slices, bool leftHanded = false)
    {
        var row = Rotate(new Vector3D(1, 0, 0));
        var column = Rotate(new Vector3D(0, 1, 0));
        var normal = row.Cross(column);
        return new(columns, rows, slices, Spacing, Origin, row, column, leftHanded ? -normal : normal);
    }

    /// <summary>Axial in-plane, but slice index runs toward the feet: a left-handed grid (qfac −1).</summary>
    public static VolumeGeometry AxialLeftHanded(int columns, int rows, int slices) =>
        new(columns, rows, slices, Spacing, Origin, new(1, 0, 0), new(0, 1, 0), new(0, 0, -1));

    private static Vector3D Rotate(Vector3D v)
    {
        v = RotateAbout(v, 0, 0.3);
        v = RotateAbout(v, 1, -0.45);
        return RotateAbout(v, 2, 2.2);
    }

    private static Vector3D RotateAbout(Vector3D v, int axis, double angle)
    {
        double c = Math.Cos(angle), s = Math.Sin(angle);
        return axis switch
        {
            0 => new(v.X, (c * v.Y) - (s * v.Z), (s * v.Y) + (c * v.Z)),
            1 => new((c * v.X) + (s * v.Z), v.Y, (-s * v.X) + (c * v.Z)),
            _ => new((c * v.X) - (s * v.Y), (s * v.X) + (c * v.Y), v.Z),
        };
    }

    /// <summary>Seeded, mostly incompressible voxels of any type (float32 kept finite).</summary>
    public static Volume Random(VolumeGeometry geometry, VoxelType type, int seed)
    {
        var volume = Volume.Allocate(geometry, type);
        var random = new Random(seed);
        if (type == VoxelType.Float32)
        {
            var floats = volume.AsFloat32();
            for (var i = 0; i < floats.Length; i++)
            {
                floats[i] = (float)((random.NextDouble() * 4000) - 1000);
            }
        }
        else
        {
            random.NextBytes(volume.Data);
        }
        return volume;
    }

    /// <summary>Body-like int16: air outside an ellipse, soft tissue with noise inside; compresses like CT.</summary>
    public static Volume CtLike(VolumeGeometry geometry, int seed)
    {
        var volume = Volume.Allocate(geometry, VoxelType.Int16);
        var voxels = volume.AsInt16();
        var random = new Random(seed);
        int nx = geometry.Columns, ny = geometry.Rows;
        for (var k = 0; k < geometry.Slices; k++)
        {
            for (var j = 0; j < ny; j++)
            {
                for (var i = 0; i < nx; i++)
                {
                    double x = (i - (nx / 2.0)) / (nx * 0.4), y = (j - (ny / 2.0)) / (ny * 0.3);
                    var inside = (x * x) + (y * y) < 1;
                    voxels[(((k * ny) + j) * nx) + i] = (short)((inside ? 40 : -1000) + random.Next(-20, 21));
                }
            }
        }
        return volume;
    }
}
