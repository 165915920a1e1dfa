using System.Globalization;
using System.Text.RegularExpressions;

namespace OrthancSeg.Worker.Labels;

/// <summary>One value of a workflow's label schema.</summary>
internal sealed record LabelDefinition(int Value, string Name, IReadOnlyList<string> Synonyms, string? Code = null, string? Colour = null);

/// <summary>How a segment name was matched to a label value; the names are stored in the labels' segments column.</summary>
internal enum SegmentMatch
{
    None,
    Name,
    Synonym,
    OhifDefaultName,
}

/// <summary>The outcome of mapping one SEG segment name.</summary>
internal sealed record SegmentNameMatch(int LabelValue, string? LabelName, SegmentMatch Match);

/// <summary>
/// Maps SEG segment names to a workflow's label values: by name, then synonym (both case-insensitive,
/// surrounding blanks ignored), then — when the workflow allows it — OHIF's default "Segment N" to value N.
/// Never by raw segment number: OHIF numbers segments in the order they were added, not by meaning.
/// </summary>
internal sealed partial class SegmentNameMapper
{
    private readonly Dictionary<string, LabelDefinition> _byName = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, LabelDefinition> _bySynonym = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<int, LabelDefinition> _byValue = [];
    private readonly bool _allowOhifDefaultNames;

    public SegmentNameMapper(IReadOnlyList<LabelDefinition> labels, bool allowOhifDefaultNames)
    {
        ArgumentNullException.ThrowIfNull(labels);
        Labels = labels;
        _allowOhifDefaultNames = allowOhifDefaultNames;
        foreach (var label in labels)
        {
            _byName[label.Name.Trim()] = label;
            _byValue[label.Value] = label;
            foreach (var synonym in label.Synonyms)
            {
                _bySynonym[synonym.Trim()] = label;
            }
        }
    }

    public IReadOnlyList<LabelDefinition> Labels { get; }

    public SegmentNameMatch Map(string? segmentLabel)
    {
        var name = segmentLabel?.Trim() ?? string.Empty;
        if (_byName.TryGetValue(name, out var byName))
        {
            return new(byName.Value, byName.Name, SegmentMatch.Name);
        }
        if (_bySynonym.TryGetValue(name, out var bySynonym))
        {
            return new(bySynonym.Value, bySynonym.Name, SegmentMatch.Synonym);
        }
        if (_allowOhifDefaultNames)
        {
            var match = OhifDefaultName().Match(name);
            if (match.Success
                && int.TryParse(match.Groups[1].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var number)
                && _byValue.TryGetValue(number, out var byNumber))
            {
                return new(byNumber.Value, byNumber.Name, SegmentMatch.OhifDefaultName);
            }
        }
        return new(0, null, SegmentMatch.None);
    }

    /// <summary>"liver (1), tumor (2; also: lesion)" — what a rejection reason lists so the annotator can rename.</summary>
    public string DescribeLabels() =>
        string.Join(", ", Labels.OrderBy(l => l.Value).Select(l =>
            l.Synonyms.Count == 0 ? $"{l.Name} ({l.Value})" : $"{l.Name} ({l.Value}; also: {string.Join(", ", l.Synonyms)})"));

    [GeneratedRegex(@"^Segment\s+(\d{1,3})$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex OhifDefaultName();
}
