namespace OrthancSeg.Worker.Training.Slurm;

/// <summary>
/// A request Slurm can never run as asked (unknown partition, more GPUs, CPUs or memory than any node of the
/// partition has, a time limit above the partition's). Retrying cannot help; <see cref="Exception.Message"/> is the
/// reason, written for the person who made the request.
/// </summary>
internal sealed class SlurmRequestRefusedException(string message) : Exception(message);

/// <summary>A Slurm command answered with an error that is neither an outage nor a refusal; the message has its output.</summary>
internal sealed class SlurmCommandException(string message) : Exception(message);
