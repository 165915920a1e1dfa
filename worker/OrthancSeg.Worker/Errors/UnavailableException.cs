namespace OrthancSeg.Worker.Errors;

/// <summary>
/// A dependency the request needs is down or unreachable (a scheduler, a file system); gRPC answers Unavailable with this
/// message, which tells the caller that trying again later may work. Orthanc and PostgreSQL outages are recognised by their
/// own exceptions and need not be wrapped.
/// </summary>
internal sealed class UnavailableException(string message, Exception? inner = null) : Exception(message, inner);
