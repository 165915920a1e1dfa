using System.Net;

namespace OrthancSeg.Worker.Orthanc;

/// <summary>
/// An Orthanc request that failed. The message names the method, the URL and what happened;
/// <see cref="StatusCode"/> is null when Orthanc gave no answer at all (down, unreachable, too slow).
/// </summary>
internal sealed class OrthancException(string message, HttpStatusCode? statusCode, Exception? inner = null, string? details = null) : Exception(message, inner)
{
    public HttpStatusCode? StatusCode { get; } = statusCode;

    /// <summary>The "Details" of Orthanc's JSON error answer, when it gave one: what went wrong in Orthanc's own words.</summary>
    public string? Details { get; } = details;

    /// <summary>True when Orthanc did not answer or answered that it cannot serve now: worth retrying later.</summary>
    public bool IsUnavailable => StatusCode is null or HttpStatusCode.ServiceUnavailable or HttpStatusCode.BadGateway or HttpStatusCode.GatewayTimeout;

    /// <summary>True when Orthanc answered that the resource does not exist (never stored, or deleted since).</summary>
    public bool IsNotFound => StatusCode == HttpStatusCode.NotFound;
}
