using System.Buffers.Binary;
using System.Globalization;

namespace OrthancSeg.Dicom;

/// <summary>How 1-bit pixel data is laid out in (7FE0,0010) (formats.md §2.6).</summary>
public enum BitPacking
{
    /// <summary>The standard: frames follow each other bit by bit; frame k starts at bit k·Rows·Columns, LSB first.</summary>
    Contiguous,

    /// <summary>Newer @cornerstonejs/adapters: each frame packed on its own and starting on a byte boundary.</summary>
    PerFrameByteAligned,

    /// <summary>One byte per pixel, any non-zero value set (tolerated by OHIF's reader, so accepted too).</summary>
    Unpacked,
}

/// <summary>
/// The frames of an image's Pixel Data as native little-endian bytes: slices of the file buffer for native
/// transfer syntaxes, decoded for RLE Lossless. Other compressed syntaxes are refused with a message that says
/// how to get them, because the worker asks Orthanc to transcode rather than carrying JPEG codecs.
/// </summary>
public sealed class DicomPixelData
{
    private readonly DicomElement _element;
    private readonly bool _isRle;
    private ReadOnlyMemory<byte>[][]? _rleFrames;

    private DicomPixelData(DicomElement element, bool isRle)
    {
        _element = element;
        _isRle = isRle;
    }

    public int Rows { get; private init; }

    public int Columns { get; private init; }

    /// <summary>NumberOfFrames, 1 when absent.</summary>
    public int FrameCount { get; private init; }

    public int SamplesPerPixel { get; private init; }

    public int BitsAllocated { get; private init; }

    public int BitsStored { get; private init; }

    public int PixelRepresentation { get; private init; }

    /// <summary>0 (by pixel) or 1 (by plane); frames returned by <see cref="GetFrame(int)"/> follow it.</summary>
    public int PlanarConfiguration { get; private init; }

    public string PhotometricInterpretation { get; private init; } = "";

    /// <summary>Bytes of one frame as <see cref="GetFrame(int)"/> returns it (1-bit frames: one byte per pixel).</summary>
    public int FrameLength => checked(Rows * Columns * SamplesInFrame * Math.Max(1, BitsAllocated / 8));

    /// <summary>
    /// Native YBR_FULL_422/YBR_PARTIAL_422 store two luminance samples and one of each chrominance per pixel pair
    /// (PS3.3 C.7.6.3.1.2), so a frame holds two samples per pixel, not three. RLE decodes to full resolution.
    /// </summary>
    private int SamplesInFrame =>
        !_isRle && SamplesPerPixel == 3 && PhotometricInterpretation is "YBR_FULL_422" or "YBR_PARTIAL_422" ? 2 : SamplesPerPixel;

    public static DicomPixelData Create(DicomDataset dataset, string transferSyntaxUid)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(transferSyntaxUid);
        if (transferSyntaxUid == TransferSyntaxes.ExplicitVRBigEndian)
        {
            throw new DicomException(
                $"Explicit VR Big Endian ({TransferSyntaxes.ExplicitVRBigEndian}) is not supported; ask Orthanc to transcode to {TransferSyntaxes.ExplicitVRLittleEndian}");
        }
        var isRle = transferSyntaxUid == TransferSyntaxes.RleLossless;
        if (!isRle && !TransferSyntaxes.IsNative(transferSyntaxUid))
        {
            throw new DicomException(
                $"Transfer syntax {transferSyntaxUid} ({TransferSyntaxes.NameOf(transferSyntaxUid)}) is compressed; the worker asks Orthanc to transcode it to Explicit VR Little Endian");
        }
        var element = dataset[DicomTags.PixelData] ?? throw Missing(DicomTags.PixelData);
        if (element.IsEncapsulated != isRle)
        {
            throw new DicomException(isRle
                ? $"{DicomTags.Describe(DicomTags.PixelData)} is native although the transfer syntax is RLE Lossless"
                : $"{DicomTags.Describe(DicomTags.PixelData)} is encapsulated although transfer syntax {transferSyntaxUid} is native");
        }

        var bitsAllocated = ReadInt(dataset, DicomTags.BitsAllocated, 1, 64) ?? throw Missing(DicomTags.BitsAllocated);
        var pixelData = new DicomPixelData(element, isRle)
        {
            Rows = ReadInt(dataset, DicomTags.Rows, 1, ushort.MaxValue) ?? throw Missing(DicomTags.Rows),
            Columns = ReadInt(dataset, DicomTags.Columns, 1, ushort.MaxValue) ?? throw Missing(DicomTags.Columns),
            FrameCount = ReadInt(dataset, DicomTags.NumberOfFrames, 1, int.MaxValue) ?? 1,
            SamplesPerPixel = ReadInt(dataset, DicomTags.SamplesPerPixel, 1, 4) ?? 1,
            BitsAllocated = bitsAllocated,
            BitsStored = ReadInt(dataset, DicomTags.BitsStored, 1, bitsAllocated) ?? bitsAllocated,
            PixelRepresentation = ReadInt(dataset, DicomTags.PixelRepresentation, 0, 1) ?? 0,
            PlanarConfiguration = ReadInt(dataset, DicomTags.PlanarConfiguration, 0, 1) ?? 0,
            PhotometricInterpretation = dataset.GetString(DicomTags.PhotometricInterpretation) ?? throw Missing(DicomTags.PhotometricInterpretation),
        };
        pixelData.Validate();
        return pixelData;
    }

    /// <summary>Frame <paramref name="index"/> (0-based); 1-bit data is read with the standard contiguous packing.</summary>
    public ReadOnlyMemory<byte> GetFrame(int index) => GetFrame(index, BitPacking.Contiguous);

    /// <summary>
    /// Frame <paramref name="index"/>; for 1-bit data, one byte (0 or 1) per pixel unpacked from the given layout
    /// (see <see cref="GuessBitPacking"/>). Other data has no bit packing: anything but Contiguous is refused.
    /// </summary>
    public ReadOnlyMemory<byte> GetFrame(int index, BitPacking packing)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, FrameCount);
        if (packing != BitPacking.Contiguous && BitsAllocated != 1)
        {
            // Asking for a bit packing of byte-sized samples is a caller bug, not something to ignore silently.
            throw new ArgumentException($"Bit packing {packing} applies to BitsAllocated 1, not {BitsAllocated}", nameof(packing));
        }
        if (_isRle)
        {
            return DecodeRle(index);
        }
        if (BitsAllocated == 1)
        {
            return UnpackBits(index, packing);
        }
        var length = (long)FrameLength;
        return _element.Value.Slice((int)(index * length), (int)length);
    }

    /// <summary>
    /// The 1-bit layout the Pixel Data length implies (formats.md §2.6): contiguous (the standard) when that length
    /// fits, else per-frame byte-aligned, else unpacked; lengths may carry one byte of even padding. Where both packed
    /// lengths are equal but the layouts are not (e.g. three 3x5 frames: 6 bytes either way) the length cannot tell,
    /// and the standard is assumed.
    /// </summary>
    public BitPacking GuessBitPacking()
    {
        if (BitsAllocated != 1)
        {
            throw new InvalidOperationException($"Bit packing applies to BitsAllocated 1, not {BitsAllocated}");
        }
        var length = _element.Value.Length;
        var pixels = (long)Rows * Columns;
        if (Fits(length, ((FrameCount * pixels) + 7) / 8))
        {
            return BitPacking.Contiguous;
        }
        if (Fits(length, FrameCount * ((pixels + 7) / 8)))
        {
            return BitPacking.PerFrameByteAligned;
        }
        if (Fits(length, FrameCount * pixels))
        {
            return BitPacking.Unpacked;
        }
        throw new DicomException(
            $"1-bit {DicomTags.Describe(DicomTags.PixelData)} holds {length} bytes, which fits no known packing of {FrameCount} frames of {Rows}x{Columns}");

        static bool Fits(long actual, long expected) => actual == expected || actual == expected + 1;
    }

    private void Validate()
    {
        if (BitsAllocated is not (1 or 8 or 16 or 32 or 64))
        {
            throw new DicomException($"BitsAllocated {BitsAllocated} is not 1, 8, 16, 32 or 64");
        }
        if (BitsAllocated == 1 && SamplesPerPixel != 1)
        {
            throw new DicomException($"BitsAllocated 1 needs SamplesPerPixel 1, not {SamplesPerPixel}");
        }
        if ((long)Rows * Columns * SamplesInFrame * Math.Max(1, BitsAllocated / 8) > Array.MaxLength)
        {
            throw new DicomException($"A frame of {Rows}x{Columns}x{SamplesPerPixel} at {BitsAllocated} bits is larger than one buffer can hold");
        }
        if (_isRle)
        {
            if (BitsAllocated == 1)
            {
                throw new DicomException("RLE Lossless with BitsAllocated 1 is not supported; ask Orthanc to transcode to Explicit VR Little Endian");
            }
            return;
        }
        if (BitsAllocated > 1)
        {
            var needed = (long)FrameCount * FrameLength;
            if (_element.Value.Length < needed)
            {
                throw new DicomException(
                    $"{DicomTags.Describe(DicomTags.PixelData)} holds {_element.Value.Length} bytes; {FrameCount} frames of {Rows}x{Columns}x{SamplesPerPixel} at {BitsAllocated} bits need {needed}");
            }
        }
    }

    private ReadOnlyMemory<byte> UnpackBits(int index, BitPacking packing)
    {
        var pixels = (long)Rows * Columns;
        var data = _element.Value.Span;
        byte[] frame;
        if (packing == BitPacking.Unpacked)
        {
            var start = index * pixels;
            if (data.Length < start + pixels)
            {
                throw TooShort(start + pixels);
            }
            frame = new byte[pixels];
            for (var p = 0; p < frame.Length; p++)
            {
                frame[p] = data[(int)(start + p)] != 0 ? (byte)1 : (byte)0;
            }
            return frame;
        }
        var firstBit = packing switch
        {
            BitPacking.Contiguous => index * pixels,
            BitPacking.PerFrameByteAligned => index * ((pixels + 7) / 8) * 8,
            _ => throw new ArgumentOutOfRangeException(nameof(packing), packing, "Unknown bit packing"),
        };
        var lastByte = (firstBit + pixels + 7) / 8;
        if (data.Length < lastByte)
        {
            throw TooShort(lastByte);
        }
        // Allocated only once the input is known to hold the frame: a forged Rows x Columns cannot ask for more.
        frame = new byte[pixels];
        if ((firstBit & 7) == 0)
        {
            // Byte-aligned frames (always, when Rows·Columns is a multiple of 8): unpack eight pixels per byte.
            var bytes = data.Slice((int)(firstBit / 8), (int)((pixels + 7) / 8));
            var p = 0;
            foreach (var b in bytes)
            {
                for (var bit = 0; bit < 8 && p < frame.Length; bit++, p++)
                {
                    frame[p] = (byte)((b >> bit) & 1);
                }
            }
            return frame;
        }
        for (long p = 0; p < pixels; p++)
        {
            var bitIndex = firstBit + p;
            frame[p] = (byte)((data[(int)(bitIndex >> 3)] >> (int)(bitIndex & 7)) & 1);
        }
        return frame;

        DicomException TooShort(long needed) => new(
            $"1-bit {DicomTags.Describe(DicomTags.PixelData)} holds {_element.Value.Length} bytes; frame {index} read as {packing} needs {needed}");
    }

    private ReadOnlyMemory<byte> DecodeRle(int index)
    {
        _rleFrames ??= SplitFrames();
        var fragments = _rleFrames[index];
        ReadOnlySpan<byte> data;
        if (fragments.Length == 1)
        {
            data = fragments[0].Span;
        }
        else
        {
            var joined = new byte[fragments.Sum(f => (long)f.Length)];
            var offset = 0;
            foreach (var fragment in fragments)
            {
                fragment.Span.CopyTo(joined.AsSpan(offset));
                offset += fragment.Length;
            }
            data = joined;
        }
        // PackBits expands at most 64-fold (a 2-byte run makes 128 bytes), so a frame that needs more than that from
        // its fragment is corrupt; checking first keeps a forged Rows x Columns from allocating gigabytes.
        if (FrameLength > 64L * data.Length)
        {
            throw new DicomException($"RLE frame {index} is {data.Length} bytes and cannot hold a {FrameLength}-byte frame");
        }
        var frame = new byte[FrameLength];
        try
        {
            RleCodec.DecodeInto(data, frame, Rows, Columns, SamplesPerPixel, BitsAllocated, PlanarConfiguration);
        }
        catch (DicomException e)
        {
            throw new DicomException($"RLE frame {index} of {FrameCount} cannot be decoded: {e.Message}", e);
        }
        return frame;
    }

    /// <summary>The fragments of each frame: by the Basic Offset Table when present, else one fragment per frame.</summary>
    private ReadOnlyMemory<byte>[][] SplitFrames()
    {
        var fragments = _element.Fragments!;
        var offsetTable = fragments[0].Span;
        var count = fragments.Count - 1;
        if (FrameCount > count)
        {
            throw new DicomException($"RLE pixel data has {count} fragments for {FrameCount} frames; every frame needs at least one");
        }
        var frames = new ReadOnlyMemory<byte>[FrameCount][];
        if (offsetTable.IsEmpty)
        {
            if (count == FrameCount)
            {
                for (var f = 0; f < FrameCount; f++)
                {
                    frames[f] = [fragments[f + 1]];
                }
                return frames;
            }
            if (FrameCount == 1 && count > 0)
            {
                frames[0] = [.. fragments.Skip(1)];
                return frames;
            }
            throw new DicomException(
                $"RLE pixel data has {count} fragments and no Basic Offset Table for {FrameCount.ToString(CultureInfo.InvariantCulture)} frames; which fragment belongs to which frame is unknown");
        }
        if (offsetTable.Length != FrameCount * 4L)
        {
            throw new DicomException($"The Basic Offset Table holds {offsetTable.Length / 4} offsets for {FrameCount} frames");
        }
        // Offsets count from the first fragment's item tag and include each fragment's 8-byte item header.
        var starts = new long[count + 1];
        for (var i = 0; i < count; i++)
        {
            starts[i + 1] = starts[i] + 8 + fragments[i + 1].Length;
        }
        var fragment = 0;
        for (var f = 0; f < FrameCount; f++)
        {
            var start = BinaryPrimitives.ReadUInt32LittleEndian(offsetTable[(f * 4)..]);
            long end = f + 1 < FrameCount ? BinaryPrimitives.ReadUInt32LittleEndian(offsetTable[((f + 1) * 4)..]) : starts[count];
            if (fragment >= count || starts[fragment] != start || end <= start)
            {
                throw new DicomException($"Basic Offset Table entry {f} ({start}) does not point at the start of a fragment after the previous frame");
            }
            var first = fragment;
            while (fragment < count && starts[fragment] < end)
            {
                fragment++;
            }
            if (starts[fragment] != end)
            {
                throw new DicomException($"Basic Offset Table entry {f + 1} ({end}) does not point at the start of a fragment");
            }
            frames[f] = [.. fragments.Skip(first + 1).Take(fragment - first)];
        }
        return frames;
    }

    private static DicomException Missing(DicomTag tag) => new($"The data set has no {DicomTags.Describe(tag)}");

    private static int? ReadInt(DicomDataset dataset, DicomTag tag, int min, int max)
    {
        var value = dataset.GetInt(tag);
        if (value < min || value > max)
        {
            throw new DicomException($"{DicomTags.Describe(tag)} is {value}; expected {min} to {max}");
        }
        return value;
    }
}
