using System.CommandLine;
using Grpc.Core;
using OrthancSeg.Cli.Output;

namespace OrthancSeg.Cli.Connection;

/// <summary>Runs a command body that talks to the worker, turning failures into one clear line on stderr and an exit code.</summary>
internal static class CommandRunner
{
    public static async Task<int> RunAsync(ParseResult parseResult, Func<WorkerConnection, ConsoleOutput, CancellationToken, Task<int>> body,
        CancellationToken cancellationToken)
    {
        var output = new ConsoleOutput(parseResult);
        WorkerConnection? connection = null;
        try
        {
            connection = WorkerConnection.Open(parseResult);
            return await body(connection, output, cancellationToken);
        }
        catch (RpcException e) when (connection is not null)
        {
            var explained = connection.Explain(e);
            output.Error(explained.Message);
            return explained.ExitCode;
        }
        catch (CliException e)
        {
            output.Error(e.Message);
            return e.ExitCode;
        }
        finally
        {
            connection?.Dispose();
        }
    }
}
