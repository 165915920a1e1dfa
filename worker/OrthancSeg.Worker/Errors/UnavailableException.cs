namespace OrthancSeg.Worker.Errors;

/// <summary>
/// A dependency (a scheduler such as Slurm, a file system, …) is down or unreachable. gRPC answers Unavailable with this message,
/// which tells the caller that trying again later may work; the job runner treats it as an outage of <see cref="Dependency"/>, not a
/// failure of the job: the job waits and is retried without spending an attempt. Orthanc and PostgreSQL outages are recognised by
/// their own exceptions and need not be wrapped.
/// </summary>
internal sealed class UnavailableException(string dependency, string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>What is down, as operators name it ("Slurm").</summary>
    public string Dependency { get; } = dependency;
}
