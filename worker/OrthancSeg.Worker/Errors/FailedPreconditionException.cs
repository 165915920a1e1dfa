namespace OrthancSeg.Worker.Errors;

/// <summary>The resource exists but is in the wrong state for the request; gRPC answers FailedPrecondition with this message.</summary>
internal sealed class FailedPreconditionException(string message) : Exception(message);
