namespace OrthancSeg.Worker.Errors;

/// <summary>The resource a caller tries to create exists already; gRPC answers AlreadyExists with this message.</summary>
internal sealed class AlreadyExistsException(string message) : Exception(message);
