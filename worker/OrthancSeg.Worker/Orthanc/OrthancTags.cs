using System.Globalization;
using System.Text.Json;

namespace OrthancSeg.Worker.Orthanc;

/// <summary>
/// DICOM tags as Orthanc's "simplified" JSON gives them (MainDicomTags, simplified-tags, instances-tags?simplify):
/// attributes by keyword, multi-valued ones as backslash-separated strings, sequences as arrays of objects.
/// Absent, empty or oddly typed attributes read as null: what Orthanc shows is whatever the file held.
/// </summary>
internal sealed class OrthancTags(JsonElement element)
{
    /// <summary>The trimmed text of an attribute, or null when it is absent, empty or not text.</summary>
    public string? Text(string keyword) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(keyword, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString() is { } s && s.Trim().Length > 0 ? s.Trim() : null
            : null;

    /// <summary>The numbers of a DS/IS/binary attribute, or null when any value is not a number.</summary>
    public double[]? Numbers(string keyword)
    {
        if (Text(keyword) is not { } text)
        {
            return null;
        }
        var parts = text.Split('\\');
        var values = new double[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!double.TryParse(parts[i].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]))
            {
                return null;
            }
        }
        return values;
    }

    public int? Integer(string keyword) =>
        Numbers(keyword) is [var value] && value == Math.Floor(value) && Math.Abs(value) < int.MaxValue ? (int)value : null;

    /// <summary>The items of a sequence attribute; empty when it is absent or not a sequence.</summary>
    public IReadOnlyList<OrthancTags> Items(string keyword) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(keyword, out var value) && value.ValueKind == JsonValueKind.Array
            ? value.EnumerateArray().Select(item => new OrthancTags(item)).ToList()
            : [];
}
