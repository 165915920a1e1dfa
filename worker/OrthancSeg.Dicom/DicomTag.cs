using System.Globalization;

namespace OrthancSeg.Dicom;

/// <summary>A DICOM attribute tag (group, element), ordered as DICOM orders elements in a data set.</summary>
public readonly record struct DicomTag(ushort Group, ushort Element) : IComparable<DicomTag>
{
    public uint Value => ((uint)Group << 16) | Element;

    public bool IsPrivate => (Group & 1) == 1;

    public int CompareTo(DicomTag other) => Value.CompareTo(other.Value);

    public static bool operator <(DicomTag left, DicomTag right) => left.Value < right.Value;
    public static bool operator >(DicomTag left, DicomTag right) => left.Value > right.Value;
    public static bool operator <=(DicomTag left, DicomTag right) => left.Value <= right.Value;
    public static bool operator >=(DicomTag left, DicomTag right) => left.Value >= right.Value;

    /// <summary>Parses "0020,000D", "(0020,000D)" or "0020000D".</summary>
    public static DicomTag Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var hex = text.Trim().TrimStart('(').TrimEnd(')').Replace(",", "", StringComparison.Ordinal);
        if (hex.Length != 8 || !uint.TryParse(hex, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var value))
        {
            throw new FormatException($"'{text}' is not a DICOM tag (expected GGGG,EEEE in hexadecimal)");
        }
        return new DicomTag((ushort)(value >> 16), (ushort)value);
    }

    public override string ToString() => $"({Group:X4},{Element:X4})";
}
