using Grpc.Core;
using OrthancSeg.Contracts.V1;

namespace OrthancSeg.Worker.Grpc;

/// <summary>The snapshot part of orthancseg.v1.Admin, delegated to <see cref="Datasets.SnapshotsAdmin"/>.</summary>
internal sealed partial class AdminService
{
    public override Task<ExportSnapshotResponse> ExportSnapshot(ExportSnapshotRequest request, ServerCallContext context) =>
        snapshots.ExportSnapshotAsync(request, context.CancellationToken);

    public override Task<GetSnapshotResponse> GetSnapshot(GetSnapshotRequest request, ServerCallContext context) =>
        snapshots.GetSnapshotAsync(request, context.CancellationToken);

    public override Task<ListSnapshotsResponse> ListSnapshots(ListSnapshotsRequest request, ServerCallContext context) =>
        snapshots.ListSnapshotsAsync(request, context.CancellationToken);

    public override Task WatchSnapshot(WatchSnapshotRequest request, IServerStreamWriter<WatchSnapshotResponse> responseStream, ServerCallContext context) =>
        snapshots.WatchSnapshotAsync(request, responseStream, context.CancellationToken);
}
