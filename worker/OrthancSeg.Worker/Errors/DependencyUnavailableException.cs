namespace OrthancSeg.Worker.Errors;

/// <summary>
/// A dependency (Orthanc, PostgreSQL, Slurm, …) cannot be reached or cannot serve now. gRPC answers Unavailable; the job runner
/// treats it as an outage, not a failure of the job: the job waits and is retried without spending an attempt.
/// </summary>
internal sealed class DependencyUnavailableException(string dependency, string message, Exception? inner = null) : Exception(message, inner)
{
    public string Dependency { get; } = dependency;
}
