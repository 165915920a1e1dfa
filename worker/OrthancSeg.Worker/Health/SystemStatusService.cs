using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using OrthancSeg.Contracts.V1;

namespace OrthancSeg.Worker.Health;

/// <summary>orthancseg.v1.SystemService: what the system is doing right now, from <see cref="SystemStatusReporter"/>.</summary>
internal sealed class SystemStatusService(SystemStatusReporter status) : SystemService.SystemServiceBase
{
    public override async Task<GetSystemStatusResponse> GetSystemStatus(GetSystemStatusRequest request, ServerCallContext context)
    {
        var report = await status.GetAsync(context.CancellationToken);
        var response = new GetSystemStatusResponse
        {
            WorkerVersion = report.WorkerVersion,
            StartedAt = Timestamp.FromDateTimeOffset(report.StartedAt),
            OrthancVersion = report.OrthancVersion ?? "",
            PostgresqlVersion = report.PostgresVersion ?? "",
            ChangeFeed = ToContract(report.ChangeFeed),
            QueuesRead = report.Queues is not null,
            LocalBackend = ToContract(report.LocalBackend),
            SlurmBackend = ToContract(report.SlurmBackend),
            DefaultBackend = report.DefaultBackend,
        };
        response.Dependencies.AddRange(report.Dependencies.Select(d => new DependencyStatus { Name = d.Name, Healthy = d.Healthy, Detail = d.Detail }));
        if (report.Schema is { } schema)
        {
            response.Schema = new SchemaVersion { Version = schema.Version, Name = schema.Name, AppliedAt = Timestamp.FromDateTimeOffset(schema.AppliedAt) };
        }
        response.Queues.AddRange((report.Queues ?? []).Select(ToContract));
        return response;
    }

    private static ChangeFeedStatus ToContract(ChangeFeedReport feed)
    {
        var result = new ChangeFeedStatus
        {
            CursorRead = feed.Cursor is not null,
            Cursor = feed.Cursor ?? 0,
            OrthancAnswered = feed.OrthancLastSeq is not null,
            OrthancLastSeq = feed.OrthancLastSeq ?? 0,
            Lag = feed.Lag ?? 0,
            Detail = feed.Detail,
        };
        if (feed.CursorAdvancedAt is { } advanced)
        {
            result.CursorAdvancedAt = Timestamp.FromDateTimeOffset(advanced);
        }
        return result;
    }

    private static JobQueueDepth ToContract(QueueReport queue)
    {
        var depth = queue.Depth;
        var result = new JobQueueDepth
        {
            Kind = depth.Kind,
            Queued = depth.Queued,
            Retrying = depth.Retrying,
            Running = depth.Running,
            Dead = depth.Dead,
            HandledHere = queue.HandledHere,
        };
        if (depth.OldestWaitingSince is { } oldest)
        {
            result.OldestWaitingSince = Timestamp.FromDateTimeOffset(oldest);
        }
        return result;
    }

    private static LocalBackendStatus ToContract(LocalBackendReport local)
    {
        var result = new LocalBackendStatus
        {
            Healthy = local.Healthy,
            Detail = local.Detail,
            CpusCapacity = local.CpusCapacity,
            CpusAdmitted = local.CpusAdmitted,
            MemoryMibCapacity = local.MemoryMiBCapacity,
            MemoryMibAdmitted = local.MemoryMiBAdmitted,
            Waiting = local.Waiting,
        };
        result.Gpus.AddRange(local.Gpus.Select(g => new LocalGpuStatus { Id = g.Gpu, HeldBy = g.HeldBy ?? "" }));
        result.Runs.AddRange(local.Runs.Select(r => new LocalRunStatus { Key = r.JobKey, Gpus = { r.Gpus }, Cpus = r.Cpus, MemoryMib = r.MemoryMiB }));
        return result;
    }

    private static SlurmBackendStatus ToContract(SlurmBackendReport slurm)
    {
        var result = new SlurmBackendStatus
        {
            Configured = slurm.Configured,
            Healthy = slurm.Healthy,
            Detail = slurm.Detail,
            JobsPending = slurm.JobsPending,
            JobsRunning = slurm.JobsRunning,
        };
        result.Partitions.AddRange(slurm.Partitions.Select(p => new SlurmPartitionStatus
        {
            Name = p.Name,
            IsDefault = p.IsDefault,
            Nodes = { p.Nodes.Select(n => $"{n.Name} ({n.State})") },
        }));
        return result;
    }
}
