using System.Buffers;
using System.Buffers.Binary;

namespace OrthancSeg.Dicom;

/// <summary>
/// RLE Lossless (PS3.5 Annex G) for one frame. A frame is split into segments, one per byte of each sample, most
/// significant byte first (G.2), each PackBits-compressed row by row; a 64-byte header gives the segment count and
/// offsets. Decoded frames are native little-endian bytes in the layout the data set's PlanarConfiguration names,
/// which is what the frame would hold after Orthanc transcoded the file to Explicit VR Little Endian.
/// </summary>
public static class RleCodec
{
    private const int HeaderLength = 64;
    private const int MaxSegments = 15;

    /// <summary>Compresses one native little-endian frame into one RLE fragment (even length).</summary>
    public static byte[] Encode(ReadOnlySpan<byte> frame, int rows, int columns, int samplesPerPixel, int bitsAllocated, int planarConfiguration = 0)
    {
        var layout = Layout.Create(rows, columns, samplesPerPixel, bitsAllocated, planarConfiguration);
        if (frame.Length < layout.FrameLength)
        {
            throw new ArgumentException($"The frame holds {frame.Length} bytes; {rows}x{columns}x{samplesPerPixel} at {bitsAllocated} bits needs {layout.FrameLength}", nameof(frame));
        }
        var output = new ArrayBufferWriter<byte>(HeaderLength + (layout.FrameLength / 2));
        output.GetSpan(HeaderLength)[..HeaderLength].Clear();
        output.Advance(HeaderLength);
        Span<int> offsets = stackalloc int[layout.Segments];
        var row = new byte[columns];
        for (var segment = 0; segment < layout.Segments; segment++)
        {
            offsets[segment] = output.WrittenCount;
            var (start, stride) = layout.Placement(segment);
            for (var r = 0; r < rows; r++)
            {
                // Rows are encoded separately so that no run crosses a row boundary (G.3.1).
                var first = start + (r * columns * stride);
                for (var c = 0; c < columns; c++)
                {
                    row[c] = frame[first + (c * stride)];
                }
                PackBits(row, output);
            }
            if (((output.WrittenCount - offsets[segment]) & 1) == 1)
            {
                // Segments are even-length; a trailing no-op (-128) keeps the pad meaningless to every decoder.
                output.GetSpan(1)[0] = 0x80;
                output.Advance(1);
            }
        }
        var encoded = output.WrittenSpan.ToArray();
        BinaryPrimitives.WriteUInt32LittleEndian(encoded, (uint)layout.Segments);
        for (var segment = 0; segment < layout.Segments; segment++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(encoded.AsSpan(4 + (segment * 4)), (uint)offsets[segment]);
        }
        return encoded;
    }

    /// <summary>Decompresses one RLE frame into a new native little-endian frame.</summary>
    public static byte[] Decode(ReadOnlySpan<byte> fragment, int rows, int columns, int samplesPerPixel, int bitsAllocated, int planarConfiguration = 0)
    {
        var layout = Layout.Create(rows, columns, samplesPerPixel, bitsAllocated, planarConfiguration);
        var frame = new byte[layout.FrameLength];
        Decode(fragment, frame, layout);
        return frame;
    }

    private static void Decode(ReadOnlySpan<byte> fragment, Span<byte> frame, Layout layout)
    {
        if (fragment.Length < HeaderLength)
        {
            throw new DicomException($"RLE frame is {fragment.Length} bytes, shorter than its 64-byte header");
        }
        var count = BinaryPrimitives.ReadUInt32LittleEndian(fragment);
        if (count is < 1 or > MaxSegments)
        {
            throw new DicomException($"RLE header declares {count} segments; 1 to {MaxSegments} are allowed");
        }
        if (count != layout.Segments)
        {
            throw new DicomException(
                $"RLE header declares {count} segments but {layout.Samples} samples of {layout.BytesPerSample * 8} bits need {layout.Segments}");
        }
        var pixels = layout.Pixels;
        var scratch = layout.Segments == 1 ? null : ArrayPool<byte>.Shared.Rent(pixels);
        try
        {
            for (var segment = 0; segment < layout.Segments; segment++)
            {
                var offset = BinaryPrimitives.ReadUInt32LittleEndian(fragment[(4 + (segment * 4))..]);
                var next = segment + 1 < layout.Segments ? BinaryPrimitives.ReadUInt32LittleEndian(fragment[(8 + (segment * 4))..]) : (uint)fragment.Length;
                if (offset < HeaderLength || offset > next || next > fragment.Length)
                {
                    throw new DicomException(
                        $"RLE segment {segment} spans bytes {offset} to {next}, outside the {fragment.Length}-byte frame after its header, or overlapping the next segment");
                }
                var source = fragment[(int)offset..(int)next];
                if (scratch is null)
                {
                    // One byte per pixel and one sample: the segment is the frame.
                    DecodeSegment(source, frame[..pixels], segment);
                    continue;
                }
                DecodeSegment(source, scratch.AsSpan(0, pixels), segment);
                var (start, stride) = layout.Placement(segment);
                for (var p = 0; p < pixels; p++)
                {
                    frame[start + (p * stride)] = scratch[p];
                }
            }
        }
        finally
        {
            if (scratch is not null)
            {
                ArrayPool<byte>.Shared.Return(scratch);
            }
        }
    }

    private static void DecodeSegment(ReadOnlySpan<byte> source, Span<byte> destination, int segment)
    {
        var written = 0;
        var read = 0;
        while (written < destination.Length)
        {
            if (read >= source.Length)
            {
                throw new DicomException($"RLE segment {segment} ends after {written} of {destination.Length} bytes");
            }
            var control = (sbyte)source[read++];
            if (control >= 0)
            {
                var literal = control + 1;
                if (read + literal > source.Length)
                {
                    throw new DicomException($"RLE segment {segment} announces {literal} literal bytes at byte {read - 1} but has {source.Length - read}");
                }
                // Producers may overrun the last row; surplus bytes beyond the frame are dropped, as pydicom and DCMTK do.
                var take = Math.Min(literal, destination.Length - written);
                source.Slice(read, take).CopyTo(destination[written..]);
                written += take;
                read += literal;
            }
            else if (control != -128)
            {
                if (read >= source.Length)
                {
                    throw new DicomException($"RLE segment {segment} ends inside a replicate run at byte {read - 1}");
                }
                var take = Math.Min(1 - control, destination.Length - written);
                destination.Slice(written, take).Fill(source[read++]);
                written += take;
            }
        }
    }

    private static void PackBits(ReadOnlySpan<byte> row, ArrayBufferWriter<byte> output)
    {
        var i = 0;
        while (i < row.Length)
        {
            var run = 1;
            while (i + run < row.Length && run < 128 && row[i + run] == row[i])
            {
                run++;
            }
            if (run >= 2)
            {
                var replicate = output.GetSpan(2);
                replicate[0] = (byte)(sbyte)(1 - run);
                replicate[1] = row[i];
                output.Advance(2);
                i += run;
                continue;
            }
            // A literal ends where three equal bytes begin: a replicate run is shorter from there on.
            var end = i + 1;
            while (end < row.Length && end - i < 128
                && !(end + 2 < row.Length && row[end] == row[end + 1] && row[end] == row[end + 2]))
            {
                end++;
            }
            var literal = output.GetSpan(end - i + 1);
            literal[0] = (byte)(end - i - 1);
            row[i..end].CopyTo(literal[1..]);
            output.Advance(end - i + 1);
            i = end;
        }
    }

    /// <summary>Where segment bytes go in the native frame: each segment is one byte of one sample.</summary>
    private readonly record struct Layout(int Pixels, int Samples, int BytesPerSample, int PlanarConfiguration)
    {
        public int Segments => Samples * BytesPerSample;

        public int FrameLength => Pixels * Segments;

        public static Layout Create(int rows, int columns, int samplesPerPixel, int bitsAllocated, int planarConfiguration)
        {
            if (rows < 1 || columns < 1 || (long)rows * columns > Array.MaxLength)
            {
                throw new DicomException($"RLE frame of {rows}x{columns} pixels cannot be coded");
            }
            if (bitsAllocated is not (8 or 16 or 32 or 64) || samplesPerPixel < 1 || samplesPerPixel * (bitsAllocated / 8) > MaxSegments)
            {
                throw new DicomException(
                    $"RLE Lossless codes 8, 16, 32 or 64 bits allocated with at most {MaxSegments} segments, not {samplesPerPixel} samples of {bitsAllocated} bits");
            }
            if (planarConfiguration is not (0 or 1))
            {
                throw new DicomException($"PlanarConfiguration {planarConfiguration} is neither 0 (by pixel) nor 1 (by plane)");
            }
            var length = (long)rows * columns * samplesPerPixel * (bitsAllocated / 8);
            if (length > Array.MaxLength)
            {
                throw new DicomException($"RLE frame of {length} bytes is larger than one buffer can hold");
            }
            return new Layout(rows * columns, samplesPerPixel, bitsAllocated / 8, planarConfiguration);
        }

        /// <summary>The frame offset of pixel 0's byte for <paramref name="segment"/>, and the distance between pixels.</summary>
        public (int Start, int Stride) Placement(int segment)
        {
            var sample = segment / BytesPerSample;
            // Segment order is most significant byte first; the native frame is little endian.
            var byteInSample = BytesPerSample - 1 - (segment % BytesPerSample);
            return PlanarConfiguration == 0
                ? ((sample * BytesPerSample) + byteInSample, Samples * BytesPerSample)
                : ((sample * Pixels * BytesPerSample) + byteInSample, BytesPerSample);
        }
    }

    internal static void DecodeInto(ReadOnlySpan<byte> fragment, Span<byte> frame, int rows, int columns, int samplesPerPixel, int bitsAllocated, int planarConfiguration) =>
        Decode(fragment, frame, Layout.Create(rows, columns, samplesPerPixel, bitsAllocated, planarConfiguration));
}
