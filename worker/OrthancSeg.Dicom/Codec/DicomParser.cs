using System.Buffers.Binary;

namespace OrthancSeg.Dicom;

/// <summary>
/// Parses Little Endian elements out of one buffer. Values are slices of that buffer, never copies. Every length
/// read from the input is checked against the bytes that remain in its container before it is used, and nesting
/// is bounded, so malformed input ends in a <see cref="DicomException"/> naming the byte offset instead of an
/// out-of-range read, a huge allocation or deep recursion.
/// </summary>
internal ref struct DicomParser
{
    public const int MaxDepth = 64;
    private const uint UndefinedLength = 0xFFFFFFFF;
    private const uint ItemTag = 0xFFFEE000;
    private const uint ItemDelimitationTag = 0xFFFEE00D;
    private const uint SequenceDelimitationTag = 0xFFFEE0DD;

    /// <summary>Known VRs indexed by (first - 'A') * 26 + (second - 'A'): a table, as this runs for every element.</summary>
    private static readonly bool[] KnownVRs = BuildKnownVRs();

    private readonly ReadOnlyMemory<byte> _memory;
    private readonly ReadOnlySpan<byte> _span;
    private readonly string _where;
    private int _position;

    /// <param name="where">Appended to offsets in messages, e.g. " of the inflated data set".</param>
    public DicomParser(ReadOnlyMemory<byte> memory, int position, string where)
    {
        _memory = memory;
        _span = memory.Span;
        _position = position;
        _where = where;
    }

    public readonly int Position => _position;

    /// <summary>Reads group 0002 elements until the first element of another group.</summary>
    public void ReadMeta(DicomDataset meta, bool explicitVr)
    {
        while (_position < _span.Length)
        {
            if (_span.Length - _position < 8)
            {
                throw Truncated("file meta element header", _position);
            }
            if (BinaryPrimitives.ReadUInt16LittleEndian(_span[_position..]) != 0x0002)
            {
                return;
            }
            meta.Set(ReadElement(explicitVr, _span.Length, 0));
        }
    }

    /// <summary>Reads the top-level data set up to the end of the buffer.</summary>
    public void ReadDataset(DicomDataset dataset, bool explicitVr) => ReadElements(dataset, _span.Length, explicitVr, 0, false);

    /// <summary>
    /// Guesses the encoding of the element at <paramref name="position"/> from its header: explicit VR when the two
    /// bytes after the tag are a known VR, big endian when in addition the group only makes sense byte-swapped.
    /// </summary>
    public static (bool ExplicitVr, bool BigEndian) GuessEncoding(ReadOnlySpan<byte> span, int position)
    {
        if (span.Length - position < 8)
        {
            return (false, false);
        }
        var header = span[position..];
        if (!IsVR(header[4], header[5]))
        {
            return (false, false);
        }
        var group = BinaryPrimitives.ReadUInt16LittleEndian(header);
        // Big endian groups 0002-00FF read as xx00 in little endian; little endian data sets never start that way.
        return (true, (group & 0x00FF) == 0 && group != 0);
    }

    private static bool IsVR(byte first, byte second) =>
        first is >= (byte)'A' and <= (byte)'Z' && second is >= (byte)'A' and <= (byte)'Z' && KnownVRs[((first - 'A') * 26) + (second - 'A')];

    private static bool[] BuildKnownVRs()
    {
        var table = new bool[26 * 26];
        foreach (var vr in Enum.GetValues<DicomVR>())
        {
            if (vr != DicomVR.None)
            {
                table[((((ushort)vr >> 8) - 'A') * 26) + (((ushort)vr & 0xFF) - 'A')] = true;
            }
        }
        return table;
    }

    private void ReadElements(DicomDataset dataset, int end, bool explicitVr, int depth, bool untilItemDelimiter)
    {
        while (_position < end)
        {
            if (end - _position < 8)
            {
                throw Truncated("element header", _position);
            }
            var raw = ReadTag(_position);
            if (raw == ItemDelimitationTag)
            {
                if (!untilItemDelimiter)
                {
                    throw Malformed($"an item delimiter outside an undefined-length item", _position);
                }
                _position += 8;
                return;
            }
            if (raw is ItemTag or SequenceDelimitationTag)
            {
                throw Malformed($"{TagOf(raw)} where a data element was expected", _position);
            }
            dataset.Set(ReadElement(explicitVr, end, depth));
        }
        if (untilItemDelimiter)
        {
            throw Truncated("item delimiter (FFFE,E00D) of an undefined-length item", _position);
        }
    }

    private DicomElement ReadElement(bool explicitVr, int end, int depth)
    {
        var start = _position;
        var tag = TagOf(ReadTag(start));
        DicomVR vr;
        uint length;
        if (explicitVr)
        {
            var first = _span[start + 4];
            var second = _span[start + 5];
            if (!IsVR(first, second))
            {
                throw Malformed($"{DicomTags.Describe(tag)} has the unknown VR bytes 0x{first:X2} 0x{second:X2}", start + 4);
            }
            vr = (DicomVR)((first << 8) | second);
            if (DicomVRInfo.HasShortLength(vr))
            {
                length = BinaryPrimitives.ReadUInt16LittleEndian(_span[(start + 6)..]);
                _position = start + 8;
            }
            else
            {
                if (end - start < 12)
                {
                    throw Truncated($"header of {DicomTags.Describe(tag)}", start);
                }
                length = BinaryPrimitives.ReadUInt32LittleEndian(_span[(start + 8)..]);
                _position = start + 12;
            }
        }
        else
        {
            vr = DicomDictionary.VROf(tag);
            length = BinaryPrimitives.ReadUInt32LittleEndian(_span[(start + 4)..]);
            _position = start + 8;
        }

        if (length == UndefinedLength)
        {
            if (tag == DicomTags.PixelData)
            {
                return ReadEncapsulated(tag, vr, end);
            }
            if (vr is DicomVR.SQ or DicomVR.UN)
            {
                // UN of undefined length is a sequence whose items are Implicit VR (PS3.5 6.2.2), wherever it appears.
                return ReadSequence(tag, length, explicitVr && vr == DicomVR.SQ, end, depth);
            }
            throw Malformed($"{DicomTags.Describe(tag)} has VR {vr} and an undefined length, which only sequences and pixel data may have", start);
        }
        if (length > (uint)(end - _position))
        {
            throw Truncated($"value of {DicomTags.Describe(tag)} ({length} bytes, {end - _position} left)", start);
        }
        if (vr == DicomVR.SQ)
        {
            return ReadSequence(tag, length, explicitVr, end, depth);
        }
        if (vr == DicomVR.UN && explicitVr && DicomDictionary.TryGetVR(tag, out var known))
        {
            // A producer that did not know the attribute wrote UN; the value keeps its implicit-VR encoding, so with
            // the dictionary VR it decodes as the attribute it really is (pydicom's replace_un_with_known_vr).
            if (known != DicomVR.SQ)
            {
                vr = known;
            }
            else
            {
                var valueStart = _position;
                try
                {
                    return ReadSequence(tag, length, false, end, depth);
                }
                catch (DicomException)
                {
                    // Not an implicit-VR sequence after all: keep the bytes as the UN they were declared to be.
                    _position = valueStart;
                }
            }
        }
        var value = _memory.Slice(_position, (int)length);
        _position += (int)length;
        return new DicomElement(tag, vr, value);
    }

    private DicomElement ReadSequence(DicomTag tag, uint length, bool explicitVr, int end, int depth)
    {
        var start = _position;
        if (depth >= MaxDepth)
        {
            throw Malformed($"{DicomTags.Describe(tag)} nests sequences deeper than {MaxDepth} levels", start);
        }
        var undefined = length == UndefinedLength;
        var sequenceEnd = undefined ? end : _position + (int)length;
        var items = new List<DicomDataset>();
        while (true)
        {
            if (!undefined && _position == sequenceEnd)
            {
                break;
            }
            if (sequenceEnd - _position < 8)
            {
                throw Truncated($"item header in {DicomTags.Describe(tag)}", _position);
            }
            var raw = ReadTag(_position);
            var itemLength = BinaryPrimitives.ReadUInt32LittleEndian(_span[(_position + 4)..]);
            if (raw == SequenceDelimitationTag && undefined)
            {
                _position += 8;
                break;
            }
            if (raw != ItemTag)
            {
                throw Malformed($"{DicomTags.Describe(tag)} holds {TagOf(raw)} where an item (FFFE,E000) was expected", _position);
            }
            _position += 8;
            var item = new DicomDataset();
            if (itemLength == UndefinedLength)
            {
                ReadElements(item, sequenceEnd, explicitVr, depth + 1, true);
            }
            else
            {
                if (itemLength > (uint)(sequenceEnd - _position))
                {
                    throw Truncated($"item of {DicomTags.Describe(tag)} ({itemLength} bytes, {sequenceEnd - _position} left)", _position - 8);
                }
                ReadElements(item, _position + (int)itemLength, explicitVr, depth + 1, false);
            }
            items.Add(item);
        }
        return DicomElement.Sequence(tag, items);
    }

    private DicomElement ReadEncapsulated(DicomTag tag, DicomVR vr, int end)
    {
        var fragments = new List<ReadOnlyMemory<byte>>();
        while (true)
        {
            if (end - _position < 8)
            {
                throw Truncated("fragment header in encapsulated pixel data", _position);
            }
            var raw = ReadTag(_position);
            var length = BinaryPrimitives.ReadUInt32LittleEndian(_span[(_position + 4)..]);
            if (raw == SequenceDelimitationTag)
            {
                _position += 8;
                break;
            }
            if (raw != ItemTag)
            {
                throw Malformed($"encapsulated pixel data holds {TagOf(raw)} where a fragment item (FFFE,E000) was expected", _position);
            }
            if (length > (uint)(end - _position - 8))
            {
                throw Truncated($"pixel data fragment ({(length == UndefinedLength ? "undefined" : length.ToString(System.Globalization.CultureInfo.InvariantCulture))} bytes, {end - _position - 8} left)", _position);
            }
            _position += 8;
            fragments.Add(_memory.Slice(_position, (int)length));
            _position += (int)length;
        }
        if (fragments.Count == 0)
        {
            throw Malformed("encapsulated pixel data has no Basic Offset Table item", _position - 8);
        }
        return DicomElement.Encapsulated(tag, vr, fragments);
    }

    private readonly uint ReadTag(int position) =>
        ((uint)BinaryPrimitives.ReadUInt16LittleEndian(_span[position..]) << 16) | BinaryPrimitives.ReadUInt16LittleEndian(_span[(position + 2)..]);

    private static DicomTag TagOf(uint raw) => new((ushort)(raw >> 16), (ushort)raw);

    private readonly DicomException Truncated(string what, int offset) =>
        new($"Truncated DICOM input: the {what} at byte {offset}{_where} runs past the end of its container");

    private readonly DicomException Malformed(string what, int offset) =>
        new($"Malformed DICOM input: {what} at byte {offset}{_where}");
}
