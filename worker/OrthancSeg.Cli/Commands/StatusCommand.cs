using System.CommandLine;
using System.Globalization;
using OrthancSeg.Cli.Connection;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Cli.Output;

namespace OrthancSeg.Cli.Commands;

/// <summary>`orthancseg status`: the worker's version and whether PostgreSQL and Orthanc answer it.</summary>
internal static class StatusCommand
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    public static Command Create()
    {
        var command = new Command("status", "Show the worker's version and the state of its dependencies (exit 0 healthy, 1 unhealthy, 8 unreachable)");
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var status = await worker.Status.GetSystemStatusAsync(new GetSystemStatusRequest(),
                deadline: DateTime.UtcNow + Deadline, cancellationToken: ct);
            var healthy = status.Dependencies.All(d => d.Healthy);
            var startedAt = status.StartedAt.ToDateTimeOffset();
            if (output.Json)
            {
                output.WriteJson(new
                {
                    worker = worker.Address.ToString(),
                    workerVersion = status.WorkerVersion,
                    startedAt,
                    healthy,
                    dependencies = status.Dependencies.Select(d => new { d.Name, d.Healthy, d.Detail }),
                });
            }
            else
            {
                output.Line($"Worker {worker.Address} version {status.WorkerVersion}, started {startedAt.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture)}");
                output.Line();
                output.Table(["DEPENDENCY", "STATE", "DETAIL"],
                    status.Dependencies.Select(d => (IReadOnlyList<string>)[d.Name, d.Healthy ? "healthy" : "UNHEALTHY", d.Detail]));
            }
            return healthy ? ExitCodes.Ok : ExitCodes.Unhealthy;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg status",
            "orthancseg status --json");
    }
}
