using System.Globalization;
using System.Text.Json;

namespace OrthancSeg.Worker.Events;

/// <summary>Reading Orthanc's "simplified" JSON tags, where multi-valued attributes are backslash-separated strings.</summary>
internal static class OrthancTags
{
    public static string? Text(this JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString() is { } s && s.Trim().Length > 0 ? s.Trim() : null
            : null;

    public static double[]? Numbers(this JsonElement element, string name)
    {
        if (element.Text(name) is not { } text)
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

    public static int? Integer(this JsonElement element, string name) =>
        element.Numbers(name) is [var value] && value == Math.Floor(value) && Math.Abs(value) < int.MaxValue ? (int)value : null;
}
