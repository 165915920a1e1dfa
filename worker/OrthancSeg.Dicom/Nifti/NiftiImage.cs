using System.Numerics;
using System.Runtime.InteropServices;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Nifti;

/// <summary>
/// A NIfTI-1 image as read from disk: voxels in the file's datatype (converted to little-endian), the
/// affine the reader chose (sform when sform_code &gt; 0, else qform) and that affine as a
/// <see cref="VolumeGeometry"/> in LPS. <see cref="ToVolume(VoxelType)"/> turns it into a volume the
/// rest of the worker uses, refusing any conversion that would change a value.
/// </summary>
public sealed class NiftiImage
{
    internal NiftiImage(NiftiDataType dataType, byte[] data, double[,] rasAffine, VolumeGeometry geometry,
        short qformCode, short sformCode, double scaleSlope, double scaleIntercept)
    {
        DataType = dataType;
        Data = data;
        _rasAffine = rasAffine;
        Geometry = geometry;
        QformCode = qformCode;
        SformCode = sformCode;
        ScaleSlope = scaleSlope;
        ScaleIntercept = scaleIntercept;
    }

    private readonly double[,] _rasAffine;

    public NiftiDataType DataType { get; }

#pragma warning disable CA1819 // The voxel buffer is the payload; copying it on every access would defeat its purpose.
    /// <summary>Stored voxel values, little-endian, i fastest (scl_slope/scl_inter not applied).</summary>
    public byte[] Data { get; }
#pragma warning restore CA1819

    /// <summary>The grid in LPS, from the same affine as <see cref="RasAffine"/>.</summary>
    public VolumeGeometry Geometry { get; }

    public int Columns => Geometry.Columns;

    public int Rows => Geometry.Rows;

    public int Slices => Geometry.Slices;

    public short QformCode { get; }

    public short SformCode { get; }

    /// <summary>scl_slope, or 1 when the file says "no scaling" (0 or NaN).</summary>
    public double ScaleSlope { get; }

    public double ScaleIntercept { get; }

    public bool IsScaled => ScaleSlope != 1 || ScaleIntercept != 0;

    /// <summary>The voxel → RAS matrix the geometry came from (a copy).</summary>
    public double[,] RasAffine() => (double[,])_rasAffine.Clone();

    /// <summary>
    /// The natural volume type of the stored datatype: uint8 → UInt8; int8, int16, uint16, int32, uint32 →
    /// Int16; float32, float64 or any scaled data → Float32. Throws when a value does not fit.
    /// </summary>
    public Volume ToVolume() => ToVolume(NaturalVoxelType());

    /// <summary>
    /// The voxels as a <paramref name="type"/> volume (scaling applied). Lossless or not at all: any voxel
    /// the target cannot hold exactly is a <see cref="DicomException"/> naming it. When no conversion is
    /// needed the volume shares <see cref="Data"/> instead of copying it.
    /// </summary>
    public Volume ToVolume(VoxelType type)
    {
        if (!IsScaled && NiftiHeader.DataTypeOf(type).DataType == DataType)
        {
            return new Volume(Geometry, type, Data);
        }

        var volume = Volume.Allocate(Geometry, type);
        switch (DataType)
        {
            case NiftiDataType.UInt8: Convert<byte>(volume); break;
            case NiftiDataType.Int8: Convert<sbyte>(volume); break;
            case NiftiDataType.Int16: Convert<short>(volume); break;
            case NiftiDataType.UInt16: Convert<ushort>(volume); break;
            case NiftiDataType.Int32: Convert<int>(volume); break;
            case NiftiDataType.UInt32: Convert<uint>(volume); break;
            case NiftiDataType.Float32: Convert<float>(volume); break;
            case NiftiDataType.Float64: Convert<double>(volume); break;
            default: throw new DicomException($"NIfTI datatype {DataType} cannot be converted");
        }
        return volume;
    }

    private VoxelType NaturalVoxelType()
    {
        if (IsScaled)
        {
            return VoxelType.Float32;
        }
        return DataType switch
        {
            NiftiDataType.UInt8 => VoxelType.UInt8,
            NiftiDataType.Float32 or NiftiDataType.Float64 => VoxelType.Float32,
            _ => VoxelType.Int16,
        };
    }

    private void Convert<TSource>(Volume target) where TSource : unmanaged, INumberBase<TSource>
    {
        ReadOnlySpan<TSource> source = MemoryMarshal.Cast<byte, TSource>(Data.AsSpan());
        var slope = ScaleSlope;
        var intercept = ScaleIntercept;
        var scaled = IsScaled;
        long bad = -1;
        switch (target.Type)
        {
            case VoxelType.UInt8:
            {
                var to = target.AsUInt8();
                for (var i = 0; i < source.Length; i++)
                {
                    var v = Value(source[i], scaled, slope, intercept);
                    if (!(v is >= 0 and <= byte.MaxValue) || v != Math.Floor(v))
                    {
                        bad = i;
                        break;
                    }
                    to[i] = (byte)v;
                }
                break;
            }
            case VoxelType.Int16:
            {
                var to = target.AsInt16();
                for (var i = 0; i < source.Length; i++)
                {
                    var v = Value(source[i], scaled, slope, intercept);
                    if (!(v is >= short.MinValue and <= short.MaxValue) || v != Math.Floor(v))
                    {
                        bad = i;
                        break;
                    }
                    to[i] = (short)v;
                }
                break;
            }
            case VoxelType.Float32:
            {
                var to = target.AsFloat32();
                for (var i = 0; i < source.Length; i++)
                {
                    var v = Value(source[i], scaled, slope, intercept);
                    var f = (float)v;
                    if (f != v && !double.IsNaN(v))
                    {
                        bad = i;
                        break;
                    }
                    to[i] = f;
                }
                break;
            }
            default:
                throw new DicomException($"Cannot convert to {target.Type}");
        }

        if (bad >= 0)
        {
            var value = Value(source[(int)bad], scaled, slope, intercept);
            var plane = (long)Columns * Rows;
            var (k, rest) = Math.DivRem(bad, plane);
            var (j, i) = Math.DivRem(rest, Columns);
            throw new DicomException(
                $"NIfTI voxel ({i}, {j}, {k}) holds {value}, which a {target.Type} volume cannot represent exactly " +
                $"(file datatype {DataType}{(scaled ? $", scl_slope {slope}, scl_inter {intercept}" : "")})");
        }
    }

    private static double Value<TSource>(TSource raw, bool scaled, double slope, double intercept) where TSource : INumberBase<TSource>
    {
        var v = double.CreateTruncating(raw);
        return scaled ? (v * slope) + intercept : v;
    }
}
