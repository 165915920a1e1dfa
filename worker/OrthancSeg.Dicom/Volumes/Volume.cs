using System.Runtime.InteropServices;

namespace OrthancSeg.Dicom.Volumes;

/// <summary>The voxel types the worker writes: images as int16 or float32, label maps as uint8.</summary>
public enum VoxelType
{
    UInt8,
    Int16,
    Float32,
}

/// <summary>
/// A 3-D image on a <see cref="VolumeGeometry"/>: voxels little-endian, i fastest, then j, then k
/// (the NIfTI order, which is also the DICOM frames concatenated in sorted order).
/// </summary>
public sealed class Volume
{
    public Volume(VolumeGeometry geometry, VoxelType type, byte[] data)
    {
        ArgumentNullException.ThrowIfNull(geometry);
        ArgumentNullException.ThrowIfNull(data);
        var expected = geometry.VoxelCount * BytesPerVoxel(type);
        if (data.LongLength != expected)
        {
            throw new ArgumentException($"A {geometry.Columns}×{geometry.Rows}×{geometry.Slices} {type} volume needs {expected} bytes, not {data.LongLength}", nameof(data));
        }
        Geometry = geometry;
        Type = type;
        Data = data;
    }

    public static Volume Allocate(VolumeGeometry geometry, VoxelType type)
    {
        ArgumentNullException.ThrowIfNull(geometry);
        return new Volume(geometry, type, new byte[geometry.VoxelCount * BytesPerVoxel(type)]);
    }

    public VolumeGeometry Geometry { get; }

    public VoxelType Type { get; }

#pragma warning disable CA1819 // The voxel buffer is the payload; copying it on every access would defeat its purpose.
    public byte[] Data { get; }
#pragma warning restore CA1819

    public Span<short> AsInt16() => Type == VoxelType.Int16 ? MemoryMarshal.Cast<byte, short>(Data.AsSpan()) : throw WrongType(VoxelType.Int16);

    public Span<float> AsFloat32() => Type == VoxelType.Float32 ? MemoryMarshal.Cast<byte, float>(Data.AsSpan()) : throw WrongType(VoxelType.Float32);

    public Span<byte> AsUInt8() => Type == VoxelType.UInt8 ? Data.AsSpan() : throw WrongType(VoxelType.UInt8);

    /// <summary>The bytes of slice k.</summary>
    public Span<byte> SliceBytes(int k)
    {
        var size = Geometry.SliceVoxelCount * BytesPerVoxel(Type);
        return Data.AsSpan(checked(k * size), size);
    }

    public static int BytesPerVoxel(VoxelType type) => type switch
    {
        VoxelType.UInt8 => 1,
        VoxelType.Int16 => 2,
        VoxelType.Float32 => 4,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    private InvalidOperationException WrongType(VoxelType wanted) => new($"The volume holds {Type} voxels, not {wanted}");
}
