using System.Buffers.Binary;
using System.IO.Hashing;

namespace OrthancSeg.Dicom.Nifti;

/// <summary>
/// .NET's GZipStream reports a clean end of stream when the input stops before the 8-byte gzip trailer,
/// so a .nii.gz cut just after its last deflate block would read as complete. These two pass-through
/// streams let the reader compare the CRC-32 and length of what it decompressed with the last 8 bytes
/// of the compressed input.
/// </summary>
internal static class GzipTrailerCheck
{
    /// <summary>True when the input's last 8 bytes are the gzip trailer of the decompressed bytes.</summary>
    public static bool Matches(TailStream compressed, ChecksumStream decompressed)
    {
        var tail = compressed.LastEightBytes;
        return tail.Length == 8
            && BinaryPrimitives.ReadUInt32LittleEndian(tail) == decompressed.Crc32
            && BinaryPrimitives.ReadUInt32LittleEndian(tail[4..]) == unchecked((uint)decompressed.DecompressedLength);
    }
}

/// <summary>Read-through stream that remembers the last 8 bytes it passed on.</summary>
internal sealed class TailStream(Stream inner) : ReadOnlyPassThroughStream(inner)
{
    private readonly byte[] _tail = new byte[8];
    private int _tailLength;

    public ReadOnlySpan<byte> LastEightBytes => _tail.AsSpan(0, _tailLength);

    protected override void OnRead(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length >= 8)
        {
            bytes[^8..].CopyTo(_tail);
            _tailLength = 8;
            return;
        }
        var keep = Math.Min(_tailLength, 8 - bytes.Length);
        _tail.AsSpan(_tailLength - keep, keep).CopyTo(_tail);
        bytes.CopyTo(_tail.AsSpan(keep));
        _tailLength = keep + bytes.Length;
    }
}

/// <summary>Read-through stream that computes the CRC-32 and length of everything it passed on.</summary>
internal sealed class ChecksumStream(Stream inner) : ReadOnlyPassThroughStream(inner)
{
    private readonly Crc32 _crc = new();

    public uint Crc32 => _crc.GetCurrentHashAsUInt32();

    public long DecompressedLength { get; private set; }

    protected override void OnRead(ReadOnlySpan<byte> bytes)
    {
        _crc.Append(bytes);
        DecompressedLength += bytes.Length;
    }
}

internal abstract class ReadOnlyPassThroughStream(Stream inner) : Stream
{
    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(Span<byte> buffer)
    {
        var n = inner.Read(buffer);
        OnRead(buffer[..n]);
        return n;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int ReadByte()
    {
        Span<byte> one = stackalloc byte[1];
        return Read(one) == 1 ? one[0] : -1;
    }

    protected abstract void OnRead(ReadOnlySpan<byte> bytes);

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
