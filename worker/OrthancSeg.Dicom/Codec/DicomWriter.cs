using System.Buffers.Binary;

namespace OrthancSeg.Dicom;

/// <summary>
/// Writes Part 10 files in Explicit VR Little Endian with defined lengths everywhere (formats.md §1.9): every
/// reader handles that form, and lengths computed up front let a file stream out without buffering pixel data.
/// Group length elements (gggg,0000) of the data set are dropped, because values read from another encoding
/// or edited since would make them wrong, and PS3.5 7.2 retired them; (0002,0000) is always recomputed.
/// </summary>
public static class DicomWriter
{
    private const int PreambleLength = 128;
    private static readonly byte[] MetaVersion = [0x00, 0x01];

    /// <summary>A file for <paramref name="dataset"/> with meta information describing this implementation's encoding.</summary>
    public static DicomFile CreateFile(DicomDataset dataset)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        return new DicomFile(BuildMeta(new DicomDataset(), dataset), dataset, TransferSyntaxes.ExplicitVRLittleEndian);
    }

    public static byte[] ToBytes(DicomFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        var meta = BuildMeta(file.Meta, file.Dataset);
        var size = PreambleLength + 4 + DatasetLength(meta, true) + DatasetLength(file.Dataset, false);
        if (size > Array.MaxLength)
        {
            throw new DicomException($"The file would be {size} bytes, more than one buffer can hold; use Write with a stream");
        }
        var buffer = new byte[size];
        using var stream = new MemoryStream(buffer, true);
        WriteFile(meta, file.Dataset, stream);
        return buffer;
    }

    public static void Write(DicomFile file, Stream stream)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(stream);
        WriteFile(BuildMeta(file.Meta, file.Dataset), file.Dataset, stream);
    }

    private static void WriteFile(DicomDataset meta, DicomDataset dataset, Stream stream)
    {
        // Validate (and size) everything before the first byte goes out, so a refused file leaves no partial output.
        DatasetLength(dataset, false);
        Span<byte> preamble = stackalloc byte[PreambleLength + 4];
        preamble.Clear();
        "DICM"u8.CopyTo(preamble[PreambleLength..]);
        stream.Write(preamble);
        WriteDataset(meta, stream, true);
        WriteDataset(dataset, stream, false);
    }

    /// <summary>
    /// The meta to write: the caller's extra elements kept (e.g. SourceApplicationEntityTitle), the ones describing
    /// the encoding, the writer and the SOP identity replaced.
    /// </summary>
    private static DicomDataset BuildMeta(DicomDataset source, DicomDataset dataset)
    {
        var meta = new DicomDataset();
        foreach (var element in source)
        {
            if (element.Tag.Group != 0x0002)
            {
                throw new DicomException($"The file meta holds {DicomTags.Describe(element.Tag)}, which is not a group 0002 element");
            }
            if (element.Tag != DicomTags.FileMetaInformationGroupLength)
            {
                meta.Set(element);
            }
        }
        meta.SetBytes(DicomTags.FileMetaInformationVersion, DicomVR.OB, MetaVersion);
        // The data set wins: PS3.10 requires the meta to repeat its SOP identity, and a data set edited since it was
        // read (new SOPInstanceUID for a derived object) must not be filed under the old one.
        var sopClass = dataset.GetString(DicomTags.SOPClassUID) ?? meta.GetString(DicomTags.MediaStorageSOPClassUID)
            ?? throw new DicomException("Cannot write a DICOM file without SOPClassUID (0008,0016) or MediaStorageSOPClassUID (0002,0002)");
        var sopInstance = dataset.GetString(DicomTags.SOPInstanceUID) ?? meta.GetString(DicomTags.MediaStorageSOPInstanceUID)
            ?? throw new DicomException("Cannot write a DICOM file without SOPInstanceUID (0008,0018) or MediaStorageSOPInstanceUID (0002,0003)");
        meta.SetString(DicomTags.MediaStorageSOPClassUID, DicomVR.UI, sopClass);
        meta.SetString(DicomTags.MediaStorageSOPInstanceUID, DicomVR.UI, sopInstance);
        meta.SetString(DicomTags.TransferSyntaxUID, DicomVR.UI, TransferSyntaxes.ExplicitVRLittleEndian);
        meta.SetString(DicomTags.ImplementationClassUID, DicomVR.UI, Implementation.ClassUid);
        meta.SetString(DicomTags.ImplementationVersionName, DicomVR.SH, Implementation.VersionName);
        meta.SetUInt32(DicomTags.FileMetaInformationGroupLength, checked((uint)DatasetLength(meta, true)));
        return meta;
    }

    private static bool IsWritten(DicomElement element, bool isMeta) =>
        // (0002,0000) is computed over the others; in the meta it is written, in the data set group lengths are not.
        element.Tag.Element != 0x0000 || (isMeta && element.Tag.Group == 0x0002);

    private static long DatasetLength(DicomDataset dataset, bool isMeta, int depth = 0)
    {
        long length = 0;
        foreach (var element in dataset)
        {
            if (IsWritten(element, isMeta))
            {
                length += ElementLength(element, isMeta, depth);
            }
        }
        return length;
    }

    private static long ElementLength(DicomElement element, bool isMeta, int depth = 0)
    {
        Validate(element, isMeta);
        if (element.IsSequence)
        {
            // Items are built in code; one that contains itself would otherwise recurse until the stack overflows.
            if (depth >= DicomParser.MaxDepth)
            {
                throw new DicomException($"{DicomTags.Describe(element.Tag)} nests sequences deeper than {DicomParser.MaxDepth} levels (an item containing itself?)");
            }
            long content = 0;
            foreach (var item in element.Items!)
            {
                content += 8 + DatasetLength(item, false, depth + 1);
            }
            CheckLength(element, content);
            return 12 + content;
        }
        long valueLength = element.Value.Length + (element.Value.Length & 1);
        CheckLength(element, valueLength);
        return (DicomVRInfo.HasShortLength(element.VR) ? 8 : 12) + valueLength;
    }

    private static void Validate(DicomElement element, bool isMeta)
    {
        if (element.IsEncapsulated)
        {
            throw new DicomException(
                $"{DicomTags.Describe(element.Tag)} is encapsulated (compressed); the writer writes native pixel data only: decode frames with DicomPixelData first");
        }
        if (!isMeta && element.Tag.Group == 0x0002)
        {
            throw new DicomException($"The data set holds the file meta element {DicomTags.Describe(element.Tag)}; file meta belongs in DicomFile.Meta");
        }
        if (element.Tag.Group == 0xFFFE)
        {
            throw new DicomException($"The data set holds {element.Tag}, an item or delimiter tag, as an attribute");
        }
        if (element.VR == DicomVR.None || !Enum.IsDefined(element.VR))
        {
            throw new DicomException($"{DicomTags.Describe(element.Tag)} has no valid VR and cannot be written in explicit VR");
        }
        if (element.IsSequence ? element.VR != DicomVR.SQ : element.VR == DicomVR.SQ && !element.Value.IsEmpty)
        {
            throw new DicomException($"{DicomTags.Describe(element.Tag)} has VR {element.VR} but {(element.IsSequence ? "holds items" : "holds bytes instead of items")}");
        }
    }

    private static void CheckLength(DicomElement element, long length)
    {
        var max = DicomVRInfo.HasShortLength(element.VR) ? ushort.MaxValue - 1 : uint.MaxValue - 1;
        if (length > max)
        {
            throw new DicomException($"{DicomTags.Describe(element.Tag)} is {length} bytes long; VR {element.VR} holds at most {max}");
        }
    }

    private static void WriteDataset(DicomDataset dataset, Stream stream, bool isMeta)
    {
        foreach (var element in dataset)
        {
            if (IsWritten(element, isMeta))
            {
                WriteElement(element, stream, isMeta);
            }
        }
    }

    private static void WriteElement(DicomElement element, Stream stream, bool isMeta)
    {
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt16LittleEndian(header, element.Tag.Group);
        BinaryPrimitives.WriteUInt16LittleEndian(header[2..], element.Tag.Element);
        header[4] = (byte)((ushort)element.VR >> 8);
        header[5] = (byte)element.VR;
        if (element.IsSequence)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(header[6..], 0);
            BinaryPrimitives.WriteUInt32LittleEndian(header[8..], (uint)(ElementLength(element, isMeta) - 12));
            stream.Write(header);
            foreach (var item in element.Items!)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(header, 0xE000FFFE);
                BinaryPrimitives.WriteUInt32LittleEndian(header[4..], (uint)DatasetLength(item, false));
                stream.Write(header[..8]);
                WriteDataset(item, stream, false);
            }
            return;
        }
        var value = element.Value.Span;
        var length = value.Length + (value.Length & 1);
        if (DicomVRInfo.HasShortLength(element.VR))
        {
            BinaryPrimitives.WriteUInt16LittleEndian(header[6..], (ushort)length);
            stream.Write(header[..8]);
        }
        else
        {
            BinaryPrimitives.WriteUInt16LittleEndian(header[6..], 0);
            BinaryPrimitives.WriteUInt32LittleEndian(header[8..], (uint)length);
            stream.Write(header);
        }
        stream.Write(value);
        if ((value.Length & 1) == 1)
        {
            stream.WriteByte(DicomVRInfo.PaddingByte(element.VR));
        }
    }
}
