using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using OrthancSeg.Contracts.V1;

namespace OrthancSeg.Worker.Health;

/// <summary>orthancseg.v1.SystemService: the worker's version and the state of its dependencies, from <see cref="SystemStatusReporter"/>.</summary>
internal sealed class SystemStatusService(SystemStatusReporter status) : SystemService.SystemServiceBase
{
    public override async Task<GetSystemStatusResponse> GetSystemStatus(GetSystemStatusRequest request, ServerCallContext context)
    {
        var report = await status.GetAsync(context.CancellationToken);
        var response = new GetSystemStatusResponse
        {
            WorkerVersion = report.WorkerVersion,
            StartedAt = Timestamp.FromDateTimeOffset(report.StartedAt),
        };
        response.Dependencies.AddRange(report.Dependencies.Select(d => new DependencyStatus { Name = d.Name, Healthy = d.Healthy, Detail = d.Detail }));
        return response;
    }
}
