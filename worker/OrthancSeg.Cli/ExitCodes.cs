namespace OrthancSeg.Cli;

/// <summary>Exit codes scripts can rely on (`make up` waits on `orthancseg health`).</summary>
internal static class ExitCodes
{
    /// <summary>The command did what was asked and everything it checked is healthy.</summary>
    public const int Ok = 0;

    /// <summary>The worker answered, but reports something unhealthy (or the command's own check failed).</summary>
    public const int Unhealthy = 1;

    /// <summary>The worker could not be asked: unreachable, token missing or refused, bad --url.</summary>
    public const int Unreachable = 2;
}
