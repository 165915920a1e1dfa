using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Nifti;

/// <summary>
/// Reads single-file NIfTI-1 images (.nii, or gzip-compressed .nii.gz, detected from the content), either
/// byte order, 3-D (or 4-D+ with one volume). Everything it cannot read exactly is a
/// <see cref="DicomException"/> that says what is wrong with the file.
/// </summary>
public static class NiftiReader
{
    public static NiftiImage ReadFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            return Read(file);
        }
        catch (DicomException e)
        {
            throw new DicomException($"{path}: {e.Message}", e);
        }
    }

    public static NiftiImage Read(Stream input)
    {
        ArgumentNullException.ThrowIfNull(input);
        Span<byte> magic = stackalloc byte[2];
        var sniffed = ReadAtMost(input, magic);
        var replay = new PrefixedStream(magic[..sniffed].ToArray(), input);
        if (sniffed == 2 && magic[0] == 0x1F && magic[1] == 0x8B)
        {
            var compressed = new TailStream(replay);
            using var gzip = new GZipStream(compressed, CompressionMode.Decompress, leaveOpen: true);
            var decompressed = new ChecksumStream(gzip);
            try
            {
                var image = ReadUncompressed(decompressed, "gzip-compressed ");
                if (!GzipTrailerCheck.Matches(compressed, decompressed))
                {
                    throw new DicomException(
                        "Truncated or corrupt gzip stream: its last 8 bytes are not the CRC-32 and length of the decompressed image " +
                        "(a file cut short, or several concatenated gzip members, which are not supported)");
                }
                return image;
            }
            catch (InvalidDataException e)
            {
                throw new DicomException($"The gzip stream is corrupt: {e.Message}", e);
            }
        }
        return ReadUncompressed(replay, "");
    }

    private static NiftiImage ReadUncompressed(Stream input, string what)
    {
        var header = new byte[NiftiHeader.Size];
        var got = ReadAtMost(input, header);
        if (got < NiftiHeader.Size)
        {
            throw new DicomException($"Truncated {what}NIfTI file: the header needs {NiftiHeader.Size} bytes, the file has {got}");
        }

        var h = new HeaderReader(header);
        var dim0 = h.Int16(NiftiHeader.Dim);
        var magic = Encoding.ASCII.GetString(header, NiftiHeader.Magic, 3);
        if (h.Int32(NiftiHeader.SizeofHdr) != NiftiHeader.Size)
        {
            var sizeofHdr = BinaryPrimitives.ReadInt32LittleEndian(header);
            throw sizeofHdr is 540 || BinaryPrimitives.ReverseEndianness(sizeofHdr) is 540
                ? new DicomException("This is a NIfTI-2 file (sizeof_hdr 540); only NIfTI-1 is supported")
                : new DicomException($"Not a NIfTI-1 file: sizeof_hdr is {sizeofHdr}, expected 348");
        }
        if (magic == "ni1")
        {
            throw new DicomException("This is the header of a .hdr/.img pair (magic \"ni1\"); only single-file .nii images are supported");
        }
        if (magic != "n+1" || header[NiftiHeader.Magic + 3] != 0)
        {
            throw new DicomException("Not a NIfTI-1 single file: the magic at byte 344 is not \"n+1\\0\"");
        }
        if (dim0 is < 1 or > 7)
        {
            throw new DicomException($"Invalid NIfTI header: dim[0] is {dim0}, expected 1..7");
        }

        var dims = new int[8];
        for (var d = 1; d <= 7; d++)
        {
            dims[d] = d <= dim0 ? h.Int16(NiftiHeader.Dim + (2 * d)) : 1;
            if (dims[d] < 1)
            {
                throw new DicomException($"Invalid NIfTI header: dim[{d}] is {dims[d]}, every used dimension must be at least 1");
            }
        }
        for (var d = 4; d <= 7; d++)
        {
            if (dims[d] != 1)
            {
                throw new DicomException($"The NIfTI image has {dim0} dimensions with dim[{d}] = {dims[d]}; only a single 3-D volume is supported");
            }
        }

        var dataType = (NiftiDataType)h.Int16(NiftiHeader.DataType);
        var bytesPerVoxel = NiftiHeader.BytesPerVoxel(dataType);
        if (bytesPerVoxel == 0)
        {
            throw new DicomException($"NIfTI datatype code {(short)dataType} is not supported (uint8, int8, int16, uint16, int32, uint32, float32, float64 are)");
        }
        var bitpix = h.Int16(NiftiHeader.Bitpix);
        if (bitpix != 8 * bytesPerVoxel)
        {
            throw new DicomException($"Invalid NIfTI header: bitpix is {bitpix} but datatype {dataType} has {8 * bytesPerVoxel} bits");
        }

        var voxOffset = h.Single(NiftiHeader.VoxOffset);
        if (!(voxOffset >= NiftiHeader.VoxelOffset) || voxOffset != Math.Floor(voxOffset) || voxOffset > int.MaxValue)
        {
            throw new DicomException($"Invalid NIfTI header: vox_offset is {voxOffset}, a single-file image needs a whole number ≥ 352");
        }

        var voxels = (long)dims[1] * dims[2] * dims[3];
        var dataLength = voxels * bytesPerVoxel;
        if (dataLength > Array.MaxLength)
        {
            throw new DicomException($"The NIfTI image ({dims[1]}×{dims[2]}×{dims[3]} {dataType}) is larger than one buffer can hold");
        }

        var (affine, qformCode, sformCode) = ChooseAffine(h);
        var geometry = ToGeometry(affine, dims[1], dims[2], dims[3]);

        var gap = (long)voxOffset - NiftiHeader.Size;
        var skipped = Skip(input, gap);
        if (skipped < gap)
        {
            throw new DicomException($"Truncated {what}NIfTI file: it ends at byte {NiftiHeader.Size + skipped}, before the voxel data at vox_offset {voxOffset}");
        }

        var data = GC.AllocateUninitializedArray<byte>((int)dataLength);
        var read = ReadAtMost(input, data);
        if (read < dataLength)
        {
            throw new DicomException(
                $"Truncated {what}NIfTI file or dimensions inconsistent with the data: {dims[1]}×{dims[2]}×{dims[3]} {dataType} needs {dataLength} bytes " +
                $"after vox_offset {voxOffset}, the file has {read}");
        }
        Span<byte> probe = stackalloc byte[1];
        if (ReadAtMost(input, probe) != 0)
        {
            // Reading to the end also makes GZipStream check the CRC and length in the gzip trailer.
            throw new DicomException(
                $"Dimensions inconsistent with the data: the {what}NIfTI file has more than the {dataLength} bytes that {dims[1]}×{dims[2]}×{dims[3]} {dataType} needs");
        }

        if (h.BigEndian && bytesPerVoxel > 1)
        {
            SwapInPlace(data, bytesPerVoxel);
        }

        var slope = h.Single(NiftiHeader.SclSlope);
        var intercept = h.Single(NiftiHeader.SclInter);
        if (slope == 0 || double.IsNaN(slope))
        {
            // nifti1.h: scl_slope 0 means "no scaling"; nibabel writes NaN for the same.
            slope = 1;
            intercept = 0;
        }
        else if (!double.IsFinite(slope) || !double.IsFinite(intercept))
        {
            throw new DicomException($"Invalid NIfTI header: scl_slope {slope}, scl_inter {intercept}");
        }

        return new NiftiImage(dataType, data, affine, geometry, qformCode, sformCode, slope, intercept);
    }

    private static (double[,] Affine, short QformCode, short SformCode) ChooseAffine(HeaderReader h)
    {
        var qformCode = h.Int16(NiftiHeader.QformCode);
        var sformCode = h.Int16(NiftiHeader.SformCode);
        double[,] affine;
        if (sformCode > 0)
        {
            affine = new double[4, 4];
            for (var row = 0; row < 3; row++)
            {
                for (var c = 0; c < 4; c++)
                {
                    affine[row, c] = h.Single(NiftiHeader.SrowX + (16 * row) + (4 * c));
                }
            }
            affine[3, 3] = 1;
        }
        else if (qformCode > 0)
        {
            var qfac = h.Single(NiftiHeader.Pixdim) < 0 ? -1.0 : 1.0;
            var quaternion = new NiftiQuaternion(double.NaN, h.Single(NiftiHeader.QuaternB), h.Single(NiftiHeader.QuaternB + 4), h.Single(NiftiHeader.QuaternB + 8), qfac);
            var spacing = new Vector3D(h.Single(NiftiHeader.Pixdim + 4), h.Single(NiftiHeader.Pixdim + 8), h.Single(NiftiHeader.Pixdim + 12));
            var offset = new Vector3D(h.Single(NiftiHeader.QoffsetX), h.Single(NiftiHeader.QoffsetX + 4), h.Single(NiftiHeader.QoffsetX + 8));
            affine = quaternion.ToAffine(spacing, offset);
        }
        else
        {
            throw new DicomException("The NIfTI file has no orientation (qform_code and sform_code are both 0); its voxels cannot be placed in patient space");
        }

        foreach (var v in affine)
        {
            if (!double.IsFinite(v))
            {
                throw new DicomException($"Invalid NIfTI header: the {(sformCode > 0 ? "sform" : "qform")} contains {v}");
            }
        }
        return (affine, qformCode, sformCode);
    }

    /// <summary>RAS affine → LPS grid: negate the x and y rows; spacing = column lengths.</summary>
    private static VolumeGeometry ToGeometry(double[,] ras, int columns, int rows, int slices)
    {
        var axes = new Vector3D[4];
        for (var c = 0; c < 4; c++)
        {
            axes[c] = new Vector3D(-ras[0, c], -ras[1, c], ras[2, c]);
        }
        var spacing = new Vector3D(axes[0].Length, axes[1].Length, axes[2].Length);
        if (spacing.X == 0 || spacing.Y == 0 || spacing.Z == 0)
        {
            throw new DicomException("Invalid NIfTI header: the affine maps a voxel axis to zero length");
        }
        return new VolumeGeometry(columns, rows, slices, spacing, axes[3],
            axes[0].Normalized(), axes[1].Normalized(), axes[2].Normalized());
    }

    private static int ReadAtMost(Stream input, Span<byte> buffer)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var n = input.Read(buffer[total..]);
            if (n == 0)
            {
                break;
            }
            total += n;
        }
        return total;
    }

    private static long Skip(Stream input, long count)
    {
        Span<byte> scratch = stackalloc byte[4096];
        long skipped = 0;
        while (skipped < count)
        {
            var n = input.Read(scratch[..(int)Math.Min(scratch.Length, count - skipped)]);
            if (n == 0)
            {
                break;
            }
            skipped += n;
        }
        return skipped;
    }

    private static void SwapInPlace(byte[] data, int width)
    {
        var span = data.AsSpan();
        switch (width)
        {
            case 2:
                var shorts = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(span);
                BinaryPrimitives.ReverseEndianness(shorts, shorts);
                break;
            case 4:
                var ints = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(span);
                BinaryPrimitives.ReverseEndianness(ints, ints);
                break;
            case 8:
                var longs = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(span);
                BinaryPrimitives.ReverseEndianness(longs, longs);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(width), width, null);
        }
    }

    /// <summary>Header fields in the file's byte order, which dim[0] reveals (nifti1.h: outside 1..7 means swapped).</summary>
    private readonly struct HeaderReader
    {
        private readonly byte[] _header;

        public HeaderReader(byte[] header)
        {
            _header = header;
            var dim0 = BinaryPrimitives.ReadInt16LittleEndian(header.AsSpan(NiftiHeader.Dim));
            BigEndian = dim0 is < 1 or > 7 && BinaryPrimitives.ReverseEndianness(dim0) is >= 1 and <= 7;
        }

        public bool BigEndian { get; }

        public short Int16(int offset) => BigEndian
            ? BinaryPrimitives.ReadInt16BigEndian(_header.AsSpan(offset))
            : BinaryPrimitives.ReadInt16LittleEndian(_header.AsSpan(offset));

        public int Int32(int offset) => BigEndian
            ? BinaryPrimitives.ReadInt32BigEndian(_header.AsSpan(offset))
            : BinaryPrimitives.ReadInt32LittleEndian(_header.AsSpan(offset));

        public double Single(int offset) => BigEndian
            ? BinaryPrimitives.ReadSingleBigEndian(_header.AsSpan(offset))
            : BinaryPrimitives.ReadSingleLittleEndian(_header.AsSpan(offset));
    }
}
