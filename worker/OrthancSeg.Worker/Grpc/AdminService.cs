using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Worker.Health;

namespace OrthancSeg.Worker.Grpc;

/// <summary>orthancseg.v1.Admin: translates between the contract and the features; no logic of its own.</summary>
internal sealed partial class AdminService(SystemStatusReporter status, RecordsAdmin records, Datasets.SnapshotsAdmin snapshots) : Admin.AdminBase
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
