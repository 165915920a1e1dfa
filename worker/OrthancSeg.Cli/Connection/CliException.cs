namespace OrthancSeg.Cli.Connection;

/// <summary>A failure explained to the user in one message, with the exit code it ends the command with.</summary>
internal sealed class CliException(string message, int exitCode) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
