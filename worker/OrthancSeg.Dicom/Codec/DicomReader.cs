using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;

namespace OrthancSeg.Dicom;

/// <summary>
/// Reads DICOM Part 10 files (and bare data sets without preamble or file meta). Element values are slices of the
/// input buffer: reading does not copy pixel data. Everything that is not a readable file ends in a
/// <see cref="DicomException"/> naming what is wrong and at which byte.
/// </summary>
public static class DicomReader
{
    private const int PreambleLength = 128;

    public static DicomFile ReadFile(string path) => Read(File.ReadAllBytes(path));

    public static DicomFile Read(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (stream.CanSeek)
        {
            var remaining = stream.Length - stream.Position;
            if (remaining > Array.MaxLength)
            {
                throw new DicomException($"The DICOM stream holds {remaining} bytes, more than one buffer can hold");
            }
            var buffer = new byte[remaining];
            stream.ReadExactly(buffer);
            return Read(buffer);
        }
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return Read(copy.GetBuffer().AsMemory(0, (int)copy.Length));
    }

    /// <summary>
    /// The transfer syntax a file's meta declares, null when it has no file meta, without parsing the data set:
    /// what a caller needs to decide whether to read the file or to have Orthanc transcode it first (big endian
    /// and compressed files are refused by <see cref="Read(ReadOnlyMemory{byte})"/>).
    /// </summary>
    public static string? ReadDeclaredTransferSyntax(ReadOnlyMemory<byte> bytes) =>
        ReadMeta(bytes, out _).GetString(DicomTags.TransferSyntaxUID);

    /// <param name="bytes">The file.</param>
    /// <param name="limits">Caps on what the file may make the reader allocate (a deflated data set's inflated size); null: <see cref="DicomLimits.Default"/>.</param>
    public static DicomFile Read(ReadOnlyMemory<byte> bytes, DicomLimits? limits = null)
    {
        var span = bytes.Span;
        var meta = ReadMeta(bytes, out var position);
        var declared = meta.GetString(DicomTags.TransferSyntaxUID);
        var guess = DicomParser.GuessEncoding(span, position);
        if (declared == TransferSyntaxes.ExplicitVRBigEndian || (declared is null && guess.BigEndian))
        {
            throw new DicomException(
                $"Explicit VR Big Endian ({TransferSyntaxes.ExplicitVRBigEndian}) is not supported; ask Orthanc to transcode to {TransferSyntaxes.ExplicitVRLittleEndian}");
        }

        var dataset = new DicomDataset();
        if (declared == TransferSyntaxes.DeflatedExplicitVRLittleEndian)
        {
            var inflated = Inflate(bytes[position..], position, (limits ?? DicomLimits.Default).MaxInflatedBytes);
            var parser = new DicomParser(inflated, 0, " of the inflated data set");
            parser.ReadDataset(dataset, true);
            return new DicomFile(meta, dataset, TransferSyntaxes.DeflatedExplicitVRLittleEndian);
        }

        // Implicit and explicit VR are told apart by the first element header rather than trusted blindly: files
        // whose meta claims one and whose data set uses the other exist (pydicom reads them the same way), and
        // files without meta say nothing at all.
        var explicitVr = position < span.Length ? guess.ExplicitVr : declared != TransferSyntaxes.ImplicitVRLittleEndian;
        var transferSyntax = declared switch
        {
            null or TransferSyntaxes.ImplicitVRLittleEndian or TransferSyntaxes.ExplicitVRLittleEndian =>
                explicitVr ? TransferSyntaxes.ExplicitVRLittleEndian : TransferSyntaxes.ImplicitVRLittleEndian,
            _ => declared,
        };
        var datasetParser = new DicomParser(bytes, position, "");
        datasetParser.ReadDataset(dataset, explicitVr);
        if (!explicitVr)
        {
            ResolveSignedness(dataset, 0);
        }
        return new DicomFile(meta, dataset, transferSyntax);
    }

    /// <summary>The file meta group (empty when the file has none); <paramref name="position"/> is where the data set starts.</summary>
    private static DicomDataset ReadMeta(ReadOnlyMemory<byte> bytes, out int position)
    {
        var span = bytes.Span;
        var meta = new DicomDataset();
        position = 0;
        if (span.Length >= PreambleLength + 4 && span.Slice(PreambleLength, 4).SequenceEqual("DICM"u8))
        {
            position = PreambleLength + 4;
            var parser = new DicomParser(bytes, position, "");
            // Meta is explicit VR by definition; some old writers used implicit VR there, which the header shows.
            parser.ReadMeta(meta, DicomParser.GuessEncoding(span, position).ExplicitVr);
            position = parser.Position;
        }
        else if (span.Length >= 8 && span[0] == 0x02 && span[1] == 0x00)
        {
            // File meta without the preamble.
            var parser = new DicomParser(bytes, 0, "");
            parser.ReadMeta(meta, DicomParser.GuessEncoding(span, 0).ExplicitVr);
            position = parser.Position;
        }
        return meta;
    }

    /// <summary>
    /// Attributes holding pixel values are "US or SS" in the dictionary: signed exactly when PixelRepresentation is 1
    /// (PS3.3 C.7.6.3.1), which items inherit from the data set that holds them. Implicit VR leaves the choice to
    /// the reader; without it a negative SmallestImagePixelValue would read as a large positive number.
    /// </summary>
    private static void ResolveSignedness(DicomDataset dataset, int inheritedPixelRepresentation)
    {
        var pixelRepresentation = dataset.TryGet(DicomTags.PixelRepresentation, out var element) && element.VR == DicomVR.US && element.Value.Length >= 2
            ? BinaryPrimitives.ReadUInt16LittleEndian(element.Value.Span)
            : inheritedPixelRepresentation;
        List<DicomElement>? signed = null;
        foreach (var candidate in dataset)
        {
            if (candidate.IsSequence)
            {
                foreach (var item in candidate.Items!)
                {
                    ResolveSignedness(item, pixelRepresentation);
                }
            }
            else if (pixelRepresentation == 1 && candidate.VR == DicomVR.US && IsPixelValueAttribute(candidate.Tag.Value))
            {
                (signed ??= []).Add(new DicomElement(candidate.Tag, DicomVR.SS, candidate.Value));
            }
        }
        foreach (var replacement in signed ?? [])
        {
            dataset.Set(replacement);
        }
    }

    private static bool IsPixelValueAttribute(uint tag) => tag is 0x00189810 or 0x00221452 or 0x00280104 or 0x00280105
        or 0x00280106 or 0x00280107 or 0x00280108 or 0x00280109 or 0x00280110 or 0x00280111 or 0x00280120
        or 0x00280121 or 0x00409211 or 0x00409216 or 0x00603004 or 0x00603006;

    private static ReadOnlyMemory<byte> Inflate(ReadOnlyMemory<byte> deflated, int offset, long maxInflated)
    {
        // Raw deflate cannot expand more than 1032:1, so a larger output means corrupt input, not a large image. The configured
        // cap is checked chunk by chunk as the output grows, so a deflate bomb is refused having allocated about the cap, not its claim.
        var physical = Math.Min(Array.MaxLength, (deflated.Length * 1032L) + 1024);
        var limit = Math.Min(physical, maxInflated);
        var input = MemoryMarshal.TryGetArray(deflated, out var segment)
            ? new MemoryStream(segment.Array!, segment.Offset, segment.Count, false)
            : new MemoryStream(deflated.ToArray(), false);
        using (input)
        using (var inflater = new DeflateStream(input, CompressionMode.Decompress))
        using (var output = new MemoryStream((int)Math.Min(limit, (deflated.Length * 4L) + 64)))
        {
            try
            {
                var chunk = new byte[81920];
                int read;
                while ((read = inflater.Read(chunk, 0, chunk.Length)) > 0)
                {
                    if (output.Length + read > limit)
                    {
                        throw new DicomException(limit < physical
                            ? $"The deflated data set starting at byte {offset} inflates beyond {limit} bytes, the limit for an inflated data set (MaxInflatedBytes)"
                            : $"The deflated data set starting at byte {offset} inflates beyond {limit} bytes");
                    }
                    output.Write(chunk, 0, read);
                }
            }
            catch (InvalidDataException e)
            {
                throw new DicomException($"The deflated data set starting at byte {offset} is not valid deflate data: {e.Message}", e);
            }
            return output.GetBuffer().AsMemory(0, (int)output.Length);
        }
    }
}
