using System.Globalization;

namespace OrthancSeg.Dicom.Segmentation;

/// <summary>
/// Which label value a SEG segment becomes: by SegmentLabel (trimmed, case-insensitive) first, then by
/// SegmentedPropertyTypeCode (value and scheme). Segment numbers are never used: they are ids within one
/// file (dcmjs renumbers from 1, OHIF names segments "Segment 1", …), not classes.
/// </summary>
public sealed class SegmentMapping
{
    private readonly Dictionary<string, byte> _byLabel = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<(string Value, string Scheme), byte> _byCode = [];

    public SegmentMapping(IEnumerable<KeyValuePair<string, byte>> labels, IEnumerable<KeyValuePair<CodedConcept, byte>>? codes = null)
    {
        ArgumentNullException.ThrowIfNull(labels);
        foreach (var (name, value) in labels)
        {
            var key = Normalise(name);
            if (key.Length == 0)
            {
                throw new ArgumentException("A segment label to map is empty", nameof(labels));
            }
            CheckValue(value, name);
            if (!_byLabel.TryAdd(key, value))
            {
                throw new ArgumentException($"The label '{name}' is mapped twice", nameof(labels));
            }
        }
        foreach (var (code, value) in codes ?? [])
        {
            CheckValue(value, code.ToString());
            if (!_byCode.TryAdd((code.Value, code.Scheme.ToUpperInvariant()), value))
            {
                throw new ArgumentException($"The code {code} is mapped twice", nameof(codes));
            }
        }
        if (_byLabel.Count == 0 && _byCode.Count == 0)
        {
            throw new ArgumentException("A segment mapping needs at least one label or code", nameof(labels));
        }
    }

    /// <summary>Parses "liver=1,tumor=2" (the CLI's --labels).</summary>
    public static SegmentMapping Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var pairs = new List<KeyValuePair<string, byte>>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var equals = part.LastIndexOf('=');
            if (equals <= 0 || !byte.TryParse(part[(equals + 1)..].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var value))
            {
                throw new FormatException($"'{part}' is not name=value with a value from 1 to 255 (expected e.g. liver=1,tumor=2)");
            }
            pairs.Add(new(part[..equals].Trim(), value));
        }
        return new SegmentMapping(pairs);
    }

    /// <summary>The mapped names (and codes), for messages and for naming segments when writing.</summary>
    public IReadOnlyList<string> KnownNames =>
        _byLabel.Keys.Concat(_byCode.Keys.Select(c => $"{c.Value}^{c.Scheme}")).ToList();

    public IReadOnlyDictionary<string, byte> Labels => _byLabel;

    public byte? Resolve(SegmentInfo segment)
    {
        ArgumentNullException.ThrowIfNull(segment);
        if (_byLabel.TryGetValue(Normalise(segment.Label), out var value))
        {
            return value;
        }
        if (segment.Type is { } type && _byCode.TryGetValue((type.Value, type.Scheme.ToUpperInvariant()), out value))
        {
            return value;
        }
        return null;
    }

    private static string Normalise(string name) => name.Trim();

    private static void CheckValue(byte value, string what)
    {
        if (value == 0)
        {
            throw new ArgumentException($"'{what}' is mapped to 0, which is the background; use 1 to 255");
        }
    }
}
