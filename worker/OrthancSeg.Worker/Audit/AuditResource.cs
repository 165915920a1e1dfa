using System.Globalization;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace OrthancSeg.Worker.Audit;

/// <summary>
/// What a request names, for the audit log: its identifying fields ("name", "id", "workflow", and fields ending in "_id" or
/// "_key"), with those of a message field one level down ("workflow.name=liver-ct"). Read from the request's descriptor, so
/// a new RPC is covered by naming its fields the way the API design guide does.
/// </summary>
internal static class AuditResource
{
    public static string Of(object? request) => request is IMessage message ? string.Join(", ", Fields(message, "", depth: 0)) : "";

    private static IEnumerable<string> Fields(IMessage message, string prefix, int depth)
    {
        foreach (var field in message.Descriptor.Fields.InFieldNumberOrder())
        {
            if (field.IsRepeated || field.IsMap)
            {
                continue;
            }
            var value = field.Accessor.GetValue(message);
            if (field.FieldType == FieldType.Message)
            {
                if (depth == 0 && value is IMessage inner && !IsWellKnown(field.MessageType))
                {
                    foreach (var nested in Fields(inner, $"{prefix}{field.Name}.", depth + 1))
                    {
                        yield return nested;
                    }
                }
                continue;
            }
            if (!Identifying(field.Name) || Text(value) is not { Length: > 0 } text)
            {
                continue;
            }
            yield return $"{prefix}{field.Name}={text}";
        }
    }

    private static bool Identifying(string name) =>
        name is "name" or "id" or "workflow" || name.EndsWith("_id", StringComparison.Ordinal) || name.EndsWith("_key", StringComparison.Ordinal);

    private static bool IsWellKnown(MessageDescriptor type) => type.File.Package == "google.protobuf";

    private static string? Text(object? value) => value switch
    {
        string s => s.Length > 200 ? s[..200] : s,
        long l when l != 0 => l.ToString(CultureInfo.InvariantCulture),
        int i when i != 0 => i.ToString(CultureInfo.InvariantCulture),
        _ => null,
    };
}
