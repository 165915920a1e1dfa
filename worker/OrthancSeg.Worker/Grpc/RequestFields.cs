using OrthancSeg.Worker.Errors;

namespace OrthancSeg.Worker.Grpc;

/// <summary>Checks of request fields shared by the services.</summary>
internal static class RequestFields
{
    /// <summary>The value of a field that must be given; InvalidArgument naming the field otherwise.</summary>
    public static string Required(string value, string field) =>
        string.IsNullOrWhiteSpace(value) ? throw new InvalidArgumentException(field, "is required") : value;
}
