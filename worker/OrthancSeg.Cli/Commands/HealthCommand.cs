using System.CommandLine;
using Grpc.Health.V1;
using OrthancSeg.Cli.Connection;
using OrthancSeg.Cli.Output;

namespace OrthancSeg.Cli.Commands;

/// <summary>
/// `orthancseg health`: the standard gRPC health check, no token needed. Exit 0 only when SERVING, so scripts
/// (`make up`) can wait for the worker with it.
/// </summary>
internal static class HealthCommand
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    public static Command Create()
    {
        var command = new Command("health", "Ask the worker's gRPC health service (exit 0 when SERVING, 1 when not, 8 when unreachable)");
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var response = await worker.Health.CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow + Deadline, cancellationToken: ct);
            var status = response.Status switch
            {
                HealthCheckResponse.Types.ServingStatus.Serving => "SERVING",
                HealthCheckResponse.Types.ServingStatus.NotServing => "NOT_SERVING",
                HealthCheckResponse.Types.ServingStatus.ServiceUnknown => "SERVICE_UNKNOWN",
                _ => "UNKNOWN",
            };
            if (output.Json)
            {
                output.WriteJson(new { worker = worker.Address.ToString(), status });
            }
            else
            {
                output.Line($"{status} ({worker.Address})");
            }
            return response.Status == HealthCheckResponse.Types.ServingStatus.Serving ? ExitCodes.Ok : ExitCodes.Unhealthy;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg health",
            "orthancseg health --url http://127.0.0.1:50051");
    }
}
