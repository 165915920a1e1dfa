using System.Buffers.Binary;
using System.Text;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Nifti;

/// <summary>Byte offsets of the NIfTI-1 header (nifti1.h, "348 bytes total") and the header we write.</summary>
internal static class NiftiHeader
{
    public const int Size = 348;
    public const int VoxelOffset = 352;
    public const string Description = "OrthancSeg";

    public const int SizeofHdr = 0;
    public const int Regular = 38;
    public const int Dim = 40;
    public const int DataType = 70;
    public const int Bitpix = 72;
    public const int Pixdim = 76;
    public const int VoxOffset = 108;
    public const int SclSlope = 112;
    public const int SclInter = 116;
    public const int XyztUnits = 123;
    public const int Descrip = 148;
    public const int QformCode = 252;
    public const int SformCode = 254;
    public const int QuaternB = 256;
    public const int QoffsetX = 268;
    public const int SrowX = 280;
    public const int Magic = 344;

    public const short XformScannerAnat = 1;
    public const byte UnitsMillimetre = 2;

    /// <summary>
    /// The 352 bytes before the voxels: header plus the 4-byte "no extensions" flag. sform = RAS affine;
    /// qform = the same matrix as quaternion + qfac, so tools that prefer either see one geometry.
    /// </summary>
    public static byte[] Build(Volume volume)
    {
        var geometry = volume.Geometry;
        var affine = geometry.RasAffine();
        var quaternion = NiftiQuaternion.FromAffine(affine);
        var (dataType, bitpix) = DataTypeOf(volume.Type);

        var h = new byte[VoxelOffset];
        var span = h.AsSpan();
        BinaryPrimitives.WriteInt32LittleEndian(span[SizeofHdr..], Size);
        h[Regular] = (byte)'r';
        short[] dims = [3, checked((short)geometry.Columns), checked((short)geometry.Rows), checked((short)geometry.Slices), 1, 1, 1, 1];
        for (var i = 0; i < dims.Length; i++)
        {
            BinaryPrimitives.WriteInt16LittleEndian(span[(Dim + (2 * i))..], dims[i]);
        }
        BinaryPrimitives.WriteInt16LittleEndian(span[DataType..], (short)dataType);
        BinaryPrimitives.WriteInt16LittleEndian(span[Bitpix..], bitpix);

        // pixdim[1..3] are the column lengths of the affine, so the qform rebuilt from them equals the sform.
        WriteSingle(span, Pixdim, quaternion.Qfac);
        for (var c = 0; c < 3; c++)
        {
            WriteSingle(span, Pixdim + (4 * (c + 1)), ColumnLength(affine, c));
        }
        WriteSingle(span, VoxOffset, VoxelOffset);
        WriteSingle(span, SclSlope, 1);
        WriteSingle(span, SclInter, 0);
        h[XyztUnits] = UnitsMillimetre;
        Encoding.ASCII.GetBytes(Description, span.Slice(Descrip, 80));
        BinaryPrimitives.WriteInt16LittleEndian(span[QformCode..], XformScannerAnat);
        BinaryPrimitives.WriteInt16LittleEndian(span[SformCode..], XformScannerAnat);
        var (b, c2, d) = quaternion.ToStoredSingles();
        BinaryPrimitives.WriteSingleLittleEndian(span[QuaternB..], b);
        BinaryPrimitives.WriteSingleLittleEndian(span[(QuaternB + 4)..], c2);
        BinaryPrimitives.WriteSingleLittleEndian(span[(QuaternB + 8)..], d);
        for (var row = 0; row < 3; row++)
        {
            WriteSingle(span, QoffsetX + (4 * row), affine[row, 3]);
            for (var c = 0; c < 4; c++)
            {
                WriteSingle(span, SrowX + (16 * row) + (4 * c), affine[row, c]);
            }
        }
        "n+1\0"u8.CopyTo(span[Magic..]);
        // Bytes 348..351 stay zero: the extension flag says no extensions follow.
        return h;
    }

    public static (NiftiDataType DataType, short Bitpix) DataTypeOf(VoxelType type) => type switch
    {
        VoxelType.UInt8 => (NiftiDataType.UInt8, 8),
        VoxelType.Int16 => (NiftiDataType.Int16, 16),
        VoxelType.Float32 => (NiftiDataType.Float32, 32),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "No NIfTI datatype for this voxel type"),
    };

    /// <summary>Bytes per voxel of a datatype, or 0 when the reader does not support it.</summary>
    public static int BytesPerVoxel(NiftiDataType type) => type switch
    {
        NiftiDataType.UInt8 or NiftiDataType.Int8 => 1,
        NiftiDataType.Int16 or NiftiDataType.UInt16 => 2,
        NiftiDataType.Int32 or NiftiDataType.UInt32 or NiftiDataType.Float32 => 4,
        NiftiDataType.Float64 => 8,
        _ => 0,
    };

    private static double ColumnLength(double[,] a, int c) => Math.Sqrt((a[0, c] * a[0, c]) + (a[1, c] * a[1, c]) + (a[2, c] * a[2, c]));

    private static void WriteSingle(Span<byte> span, int offset, double value) =>
        BinaryPrimitives.WriteSingleLittleEndian(span[offset..], (float)value);
}
