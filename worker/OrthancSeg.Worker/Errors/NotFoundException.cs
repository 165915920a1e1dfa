namespace OrthancSeg.Worker.Errors;

/// <summary>The resource a caller named does not exist; gRPC answers NotFound with this message.</summary>
internal sealed class NotFoundException(string message) : Exception(message);
