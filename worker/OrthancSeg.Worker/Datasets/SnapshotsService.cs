using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Options;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Grpc;
using OrthancSeg.Worker.Jobs;
using OrthancSeg.Worker.Workflows;

namespace OrthancSeg.Worker.Datasets;

/// <summary>orthancseg.v1.SnapshotService: starting exports, reading snapshots and streaming their progress.</summary>
internal sealed class SnapshotsService(SnapshotStore snapshots, WorkflowStore workflows, JobQueue queue, IOptions<DatasetOptions> options)
    : SnapshotService.SnapshotServiceBase
{
    private static readonly TimeSpan WatchInterval = TimeSpan.FromMilliseconds(250);

    public override Task<ExportSnapshotResponse> ExportSnapshot(ExportSnapshotRequest request, ServerCallContext context) =>
        ExportSnapshotAsync(request, context.CancellationToken);

    /// <summary>ExportSnapshot, also called by the retrain policy.</summary>
    public async Task<ExportSnapshotResponse> ExportSnapshotAsync(ExportSnapshotRequest request, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(request.Workflow))
        {
            throw new InvalidArgumentException("workflow", "is required");
        }
        var workflow = await workflows.GetAsync(request.Workflow, cancellationToken);
        var folder = new DatasetFolder(options.Value.ResolvedRawRoot(), workflow.DatasetId, workflow.DatasetName);
        var id = await snapshots.CreateAsync(workflow.Id, workflow.Name, folder.FinalPath, cancellationToken);
        try
        {
            var job = await ExportSnapshotHandler.EnqueueAsync(queue, id, options.Value.MaxAttempts, cancellationToken);
            await snapshots.SetJobAsync(id, job.Id.Value, cancellationToken);
        }
        catch (Exception e)
        {
            // Without its job the snapshot would stay queued and block every later export of the workflow.
            await snapshots.FailAsync(id, $"its export job could not be queued: {e.Message}", null, final: true, CancellationToken.None);
            throw;
        }
        return new ExportSnapshotResponse { Snapshot = ToContract(await snapshots.GetAsync(id, cancellationToken), null) };
    }

    public override async Task<GetSnapshotResponse> GetSnapshot(GetSnapshotRequest request, ServerCallContext context)
    {
        await snapshots.ReconcileAsync(PositiveId(request.Id), null, context.CancellationToken);
        var snapshot = await snapshots.GetAsync(request.Id, context.CancellationToken);
        return new GetSnapshotResponse { Snapshot = ToContract(snapshot, await snapshots.CasesAsync(snapshot.Id, context.CancellationToken)) };
    }

    public override async Task<ListSnapshotsResponse> ListSnapshots(ListSnapshotsRequest request, ServerCallContext context)
    {
        var size = Paging.PageSize(request.PageSize, 50, 500);
        var before = Paging.IdFromToken(request);
        var page = await snapshots.ListAsync(request.Workflow.Length == 0 ? null : request.Workflow, before, size + 1, context.CancellationToken);
        var response = new ListSnapshotsResponse();
        response.Snapshots.AddRange(page.Take(size).Select(s => ToContract(s, null)));
        if (page.Count > size)
        {
            response.NextPageToken = Paging.Token(request, page[size - 1].Id);
        }
        return response;
    }

    /// <summary>Polls the snapshot row (it is updated by whichever replica runs the export) and sends every change until it is finished.</summary>
    public override async Task WatchSnapshot(WatchSnapshotRequest request, IServerStreamWriter<WatchSnapshotResponse> stream, ServerCallContext context)
    {
        var id = PositiveId(request.Id);
        SnapshotRecord? last = null;
        while (true)
        {
            await snapshots.ReconcileAsync(id, null, context.CancellationToken);
            var current = await snapshots.GetAsync(id, context.CancellationToken);
            if (last is null || current.UpdatedAt != last.UpdatedAt || current.State != last.State)
            {
                await stream.WriteAsync(new WatchSnapshotResponse { Snapshot = ToContract(current, null) }, context.CancellationToken);
                last = current;
            }
            if (current.IsFinished)
            {
                return;
            }
            await snapshots.WaitForChangeAsync(WatchInterval, context.CancellationToken);
        }
    }

    private static long PositiveId(long id) => id > 0 ? id : throw new InvalidArgumentException("id", $"{id} is not a snapshot number");

    private static Snapshot ToContract(SnapshotRecord s, IReadOnlyList<SnapshotCaseRecord>? cases)
    {
        var result = new Snapshot
        {
            Id = s.Id,
            Workflow = s.Workflow,
            State = s.State switch
            {
                SnapshotStore.Queued => SnapshotState.Queued,
                SnapshotStore.Running => SnapshotState.Running,
                SnapshotStore.Succeeded => SnapshotState.Succeeded,
                SnapshotStore.Failed => SnapshotState.Failed,
                SnapshotStore.Cancelled => SnapshotState.Cancelled,
                _ => SnapshotState.Unspecified,
            },
            DatasetPath = s.DatasetPath,
            CasesTotal = s.CasesTotal,
            CasesDone = s.CasesDone,
            BytesRead = s.BytesRead,
            BytesWritten = s.BytesWritten,
            IncludedCount = s.IncludedCount,
            ExcludedCount = s.ExcludedCount,
            ReusedCount = s.ReusedCount,
            DatasetJson = s.DatasetJson ?? "",
            DatasetJsonSha256 = s.DatasetJsonSha256 ?? "",
            Error = s.Error ?? "",
            CreateTime = Timestamp.FromDateTimeOffset(s.CreatedAt),
            StartTime = s.StartedAt is { } started ? Timestamp.FromDateTimeOffset(started) : null,
            FinishTime = s.FinishedAt is { } finished ? Timestamp.FromDateTimeOffset(finished) : null,
            DurationMs = s.DurationMs ?? 0,
            JobId = s.JobId ?? 0,
            InstancesRead = s.InstancesRead,
            FetchMs = s.FetchMs,
        };
        if (s.ReportJson is not null && JsonSerializer.Deserialize<SnapshotReport>(s.ReportJson, SnapshotExporter.ReportJson) is { } report)
        {
            if (report.Verification is { } v)
            {
                result.Verification = new SnapshotVerification { Passed = v.Passed, CheckedFiles = v.CheckedFiles, Problems = { v.Problems } };
            }
            if (cases is not null)
            {
                result.Excluded.AddRange(report.Excluded.Select(e => new ExcludedCase { CaseKey = e.CaseKey, Reason = e.Reason }));
            }
        }
        if (cases is not null)
        {
            result.Cases.AddRange(cases.Select(c => new SnapshotCase
            {
                CaseKey = c.CaseKey,
                LabelSopInstanceUid = c.LabelSopInstanceUid,
                ImageFile = c.ImageFile,
                ImageSha256 = c.ImageSha256,
                LabelFile = c.LabelFile,
                LabelSha256 = c.LabelSha256,
                Bytes = c.ImageBytes + c.LabelBytes,
                Reused = c.Reused,
            }));
        }
        return result;
    }
}
