using System.Buffers.Binary;
using System.Collections;
using System.Globalization;
using System.Text;

namespace OrthancSeg.Dicom;

/// <summary>
/// A DICOM data set: elements kept in ascending tag order, with typed accessors that decode values on
/// demand. Getters return null (or an empty array) only when the attribute is absent or empty; a value that
/// is present but cannot be decoded as asked throws <see cref="DicomException"/> naming the attribute.
/// </summary>
public sealed class DicomDataset : IEnumerable<DicomElement>
{
    private static readonly Encoding StrictUtf8 = new UTF8Encoding(false, true);
    private readonly SortedList<uint, DicomElement> _elements = [];

    public int Count => _elements.Count;

    public bool Contains(DicomTag tag) => _elements.ContainsKey(tag.Value);

    public DicomElement? this[DicomTag tag] => _elements.TryGetValue(tag.Value, out var element) ? element : null;

    public bool TryGet(DicomTag tag, out DicomElement element)
    {
        if (_elements.TryGetValue(tag.Value, out var found))
        {
            element = found;
            return true;
        }
        element = null!;
        return false;
    }

    /// <summary>Adds or replaces the element with the same tag.</summary>
    public DicomDataset Set(DicomElement element)
    {
        ArgumentNullException.ThrowIfNull(element);
        _elements[element.Tag.Value] = element;
        return this;
    }

    public bool Remove(DicomTag tag) => _elements.Remove(tag.Value);

    public IEnumerator<DicomElement> GetEnumerator() => _elements.Values.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    // ---- text -------------------------------------------------------------------------------------------

    /// <summary>The whole text value with trailing padding removed (all values, backslash-separated).</summary>
    public string? GetText(DicomTag tag)
    {
        if (!TryGet(tag, out var element) || element.IsSequence || element.IsEncapsulated || element.Value.IsEmpty)
        {
            return null;
        }
        var text = Decode(element.Value.Span);
        // Leading spaces are significant only for LT/ST/UT; DICOM pads at the end with space or NUL.
        text = element.VR is DicomVR.LT or DicomVR.ST or DicomVR.UT ? text.TrimEnd(' ', '\0') : text.Trim(' ', '\0');
        return text.Length == 0 ? null : text;
    }

    /// <summary>The first value of a text attribute, trimmed.</summary>
    public string? GetString(DicomTag tag)
    {
        var values = GetStrings(tag);
        return values.Length == 0 ? null : values[0];
    }

    /// <summary>All values of a text attribute, each trimmed.</summary>
    public string[] GetStrings(DicomTag tag)
    {
        var text = GetText(tag);
        if (text is null)
        {
            return [];
        }
        var element = this[tag]!;
        if (element.VR is DicomVR.LT or DicomVR.ST or DicomVR.UT)
        {
            return [text];
        }
        return text.Split('\\').Select(v => v.Trim(' ', '\0')).ToArray();
    }

    // ---- numbers ----------------------------------------------------------------------------------------

    public double? GetDouble(DicomTag tag)
    {
        var values = GetDoubles(tag);
        return values.Length == 0 ? null : values[0];
    }

    public int? GetInt(DicomTag tag)
    {
        var values = GetDoubles(tag);
        if (values.Length == 0)
        {
            return null;
        }
        var value = values[0];
        if (value != Math.Floor(value) || value < int.MinValue || value > int.MaxValue)
        {
            throw new DicomException($"{DicomTags.Describe(tag)} holds {value.ToString(CultureInfo.InvariantCulture)}, which is not an integer");
        }
        return (int)value;
    }

    /// <summary>All numeric values of DS, IS and binary numeric VRs (US, SS, UL, SL, FL, FD, UV, SV).</summary>
    public double[] GetDoubles(DicomTag tag)
    {
        if (!TryGet(tag, out var element) || element.IsSequence || element.IsEncapsulated || element.Value.IsEmpty)
        {
            return [];
        }
        var span = element.Value.Span;
        switch (element.VR)
        {
            case DicomVR.DS:
            case DicomVR.IS:
                return GetStrings(tag).Where(s => s.Length > 0).Select(s => ParseNumber(tag, s)).ToArray();
            case DicomVR.US: return ReadBinary(tag, span, 2, s => BinaryPrimitives.ReadUInt16LittleEndian(s));
            case DicomVR.SS: return ReadBinary(tag, span, 2, s => BinaryPrimitives.ReadInt16LittleEndian(s));
            case DicomVR.UL: return ReadBinary(tag, span, 4, s => BinaryPrimitives.ReadUInt32LittleEndian(s));
            case DicomVR.SL: return ReadBinary(tag, span, 4, s => BinaryPrimitives.ReadInt32LittleEndian(s));
            case DicomVR.FL: return ReadBinary(tag, span, 4, s => BinaryPrimitives.ReadSingleLittleEndian(s));
            case DicomVR.FD: return ReadBinary(tag, span, 8, s => BinaryPrimitives.ReadDoubleLittleEndian(s));
            case DicomVR.UV: return ReadBinary(tag, span, 8, s => BinaryPrimitives.ReadUInt64LittleEndian(s));
            case DicomVR.SV: return ReadBinary(tag, span, 8, s => BinaryPrimitives.ReadInt64LittleEndian(s));
            case DicomVR.UN:
                // Implicit VR files read without a dictionary entry keep UN; numbers there are ambiguous.
                throw new DicomException($"{DicomTags.Describe(tag)} has VR UN and cannot be read as a number");
            default:
                throw new DicomException($"{DicomTags.Describe(tag)} has VR {element.VR}, not a numeric VR");
        }
    }

    // ---- sequences --------------------------------------------------------------------------------------

    /// <summary>The items of a sequence; empty when absent. Throws when the attribute is not a sequence.</summary>
    public IReadOnlyList<DicomDataset> GetSequence(DicomTag tag)
    {
        if (!TryGet(tag, out var element))
        {
            return [];
        }
        if (!element.IsSequence)
        {
            if (element.Value.IsEmpty)
            {
                return [];
            }
            throw new DicomException($"{DicomTags.Describe(tag)} should be a sequence but has VR {element.VR}");
        }
        return element.Items!;
    }

    /// <summary>The first item of a sequence, or null when the sequence is absent or empty.</summary>
    public DicomDataset? GetFirstItem(DicomTag tag)
    {
        var items = GetSequence(tag);
        return items.Count == 0 ? null : items[0];
    }

    // ---- setters ----------------------------------------------------------------------------------------

    public DicomDataset SetString(DicomTag tag, DicomVR vr, string? value)
    {
        var bytes = value is null ? [] : (vr is DicomVR.PN or DicomVR.LO or DicomVR.LT or DicomVR.SH or DicomVR.ST or DicomVR.UT or DicomVR.UC
            ? Encoding.UTF8.GetBytes(value)
            : Encoding.ASCII.GetBytes(value));
        return Set(new DicomElement(tag, vr, Pad(bytes, DicomVRInfo.PaddingByte(vr))));
    }

    public DicomDataset SetStrings(DicomTag tag, DicomVR vr, IEnumerable<string> values) => SetString(tag, vr, string.Join('\\', values));

    /// <summary>Writes numbers as DS (shortest round-trip form that fits 16 characters) or IS.</summary>
    public DicomDataset SetNumbers(DicomTag tag, DicomVR vr, IEnumerable<double> values)
    {
        if (vr is not (DicomVR.DS or DicomVR.IS))
        {
            throw new ArgumentException($"SetNumbers writes DS or IS, not {vr}", nameof(vr));
        }
        return SetStrings(tag, vr, values.Select(v => vr == DicomVR.IS ? ((long)v).ToString(CultureInfo.InvariantCulture) : FormatDecimalString(v)));
    }

    public DicomDataset SetUInt16(DicomTag tag, params ushort[] values)
    {
        var bytes = new byte[values.Length * 2];
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(i * 2), values[i]);
        }
        return Set(new DicomElement(tag, DicomVR.US, bytes));
    }

    public DicomDataset SetUInt32(DicomTag tag, params uint[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(i * 4), values[i]);
        }
        return Set(new DicomElement(tag, DicomVR.UL, bytes));
    }

    public DicomDataset SetSequence(DicomTag tag, params DicomDataset[] items) => Set(DicomElement.Sequence(tag, items));

    public DicomDataset SetBytes(DicomTag tag, DicomVR vr, ReadOnlyMemory<byte> value) =>
        Set(new DicomElement(tag, vr, value.Length % 2 == 0 ? value : Pad(value.ToArray(), DicomVRInfo.PaddingByte(vr))));

    /// <summary>DS allows 16 characters: use the shortest round-trip form, else fewer significant digits.</summary>
    public static string FormatDecimalString(double value)
    {
        if (!double.IsFinite(value))
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, "DS values must be finite");
        }
        var text = value.ToString("R", CultureInfo.InvariantCulture);
        for (var digits = 15; text.Length > 16 && digits > 0; digits--)
        {
            text = value.ToString("G" + digits.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        }
        return text;
    }

    private static byte[] Pad(byte[] bytes, byte padding)
    {
        if (bytes.Length % 2 == 0)
        {
            return bytes;
        }
        var padded = new byte[bytes.Length + 1];
        bytes.CopyTo(padded, 0);
        padded[^1] = padding;
        return padded;
    }

    private static string Decode(ReadOnlySpan<byte> bytes)
    {
        // Without honouring every SpecificCharacterSet, UTF-8 (a superset of the default repertoire) is tried
        // first and Latin-1 (the most common other one) is the fallback: UIDs, codes and numbers are ASCII anyway.
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            return Encoding.Latin1.GetString(bytes);
        }
    }

    private static double ParseNumber(DicomTag tag, string text)
    {
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
        {
            throw new DicomException($"{DicomTags.Describe(tag)} holds '{text}', which is not a number");
        }
        return value;
    }

    private delegate double SpanReader(ReadOnlySpan<byte> span);

    private static double[] ReadBinary(DicomTag tag, ReadOnlySpan<byte> span, int size, SpanReader read)
    {
        if (span.Length % size != 0)
        {
            throw new DicomException($"{DicomTags.Describe(tag)} has {span.Length} bytes, not a multiple of {size}");
        }
        var values = new double[span.Length / size];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = read(span.Slice(i * size, size));
        }
        return values;
    }
}
