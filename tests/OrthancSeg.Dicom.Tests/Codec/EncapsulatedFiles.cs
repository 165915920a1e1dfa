using System.Buffers.Binary;
using System.Text;

namespace OrthancSeg.Dicom.Tests.Codec;

/// <summary>
/// Builds RLE Lossless Part 10 files for tests. The writer refuses encapsulated pixel data on purpose, so the
/// file is the writer's output without pixel data, its transfer syntax swapped (both UIDs pad to 20 bytes), with
/// the encapsulated Pixel Data appended (PixelData is the last attribute, so tag order holds).
/// </summary>
internal static class EncapsulatedFiles
{
    public static byte[] Rle(DicomDataset dataset, IReadOnlyList<byte[]> fragments, byte[]? offsetTable = null)
    {
        var withoutPixels = new DicomDataset();
        foreach (var element in dataset)
        {
            if (element.Tag != DicomTags.PixelData)
            {
                withoutPixels.Set(element);
            }
        }
        var native = DicomWriter.ToBytes(DicomFile.Create(withoutPixels));
        var syntax = Encoding.ASCII.GetBytes(TransferSyntaxes.ExplicitVRLittleEndian);
        var at = native.AsSpan().IndexOf(syntax);
        Assert.True(at > 0);
        Encoding.ASCII.GetBytes(TransferSyntaxes.RleLossless + "\0").CopyTo(native, at);

        using var stream = new MemoryStream();
        stream.Write(native);
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt32LittleEndian(header, 0x00107FE0);
        header[4] = (byte)'O';
        header[5] = (byte)'B';
        BinaryPrimitives.WriteUInt16LittleEndian(header[6..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], 0xFFFFFFFF);
        stream.Write(header);
        WriteItem(stream, 0xE000FFFE, offsetTable ?? []);
        foreach (var fragment in fragments)
        {
            WriteItem(stream, 0xE000FFFE, fragment);
        }
        WriteItem(stream, 0xE0DDFFFE, []);
        return stream.ToArray();
    }

    /// <summary>A Basic Offset Table for fragments, frame f starting at fragment firstFragments[f].</summary>
    public static byte[] OffsetTable(IReadOnlyList<byte[]> fragments, params int[] firstFragments)
    {
        var table = new byte[firstFragments.Length * 4];
        for (var f = 0; f < firstFragments.Length; f++)
        {
            var offset = fragments.Take(firstFragments[f]).Sum(x => 8 + x.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(table.AsSpan(f * 4), (uint)offset);
        }
        return table;
    }

    private static void WriteItem(Stream stream, uint tag, ReadOnlySpan<byte> value)
    {
        Span<byte> header = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(header, tag);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], (uint)value.Length);
        stream.Write(header);
        stream.Write(value);
    }
}
