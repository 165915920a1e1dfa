using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Grpc;

namespace OrthancSeg.Worker.Jobs;

/// <summary>orthancseg.v1.JobService: the jobs table for admins, and cancellation.</summary>
internal sealed class JobsService(JobQueue queue, JobRunner runner) : JobService.JobServiceBase
{
    /// <summary>How long CancelJob waits for a running job to stop before answering with the cancel still pending.</summary>
    private static readonly TimeSpan CancelWait = TimeSpan.FromSeconds(10);

    public override async Task<ListJobsResponse> ListJobs(ListJobsRequest request, ServerCallContext context)
    {
        var size = Paging.PageSize(request.PageSize, 100, 1000);
        var before = Paging.IdFromToken(request.PageToken);
        var page = await queue.ListAsync(request.Kind.Length == 0 ? null : request.Kind, StateName(request.State),
            before is { } id ? new JobId(id) : null, size + 1, context.CancellationToken);
        var response = new ListJobsResponse();
        response.Jobs.AddRange(page.Take(size).Select(ToContract));
        if (page.Count > size)
        {
            response.NextPageToken = Paging.Token(page[size - 1].Id.Value);
        }
        return response;
    }

    public override async Task<GetJobResponse> GetJob(GetJobRequest request, ServerCallContext context) =>
        new() { Job = ToContract(await queue.GetAsync(Id(request.Id), context.CancellationToken)) };

    public override async Task<CancelJobResponse> CancelJob(CancelJobRequest request, ServerCallContext context)
    {
        var id = Id(request.Id);
        var job = await queue.RequestCancelAsync(id, context.CancellationToken);
        runner.CancelLocal(id);
        // A waiting job is ended by the next claim, a running one at its next heartbeat: both within a second or two here.
        var deadline = DateTimeOffset.UtcNow + CancelWait;
        while (job.State is not ("cancelled" or "succeeded") && DateTimeOffset.UtcNow < deadline)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(100), context.CancellationToken);
            job = await queue.GetAsync(id, context.CancellationToken);
        }
        return new CancelJobResponse { Job = ToContract(job) };
    }

    private static JobId Id(long id) => id > 0 ? new JobId(id) : throw new InvalidArgumentException("id", $"{id} is not a job id");

    private static string? StateName(JobState state) => state switch
    {
        JobState.Unspecified => null,
        JobState.Queued => "queued",
        JobState.Running => "running",
        JobState.Succeeded => "succeeded",
        JobState.Failed => "failed",
        JobState.Dead => "dead",
        JobState.Cancelled => "cancelled",
        _ => throw new InvalidArgumentException("state", $"{state} is not a job state"),
    };

    private static JobState State(string state) => state switch
    {
        "queued" => JobState.Queued,
        "running" => JobState.Running,
        "succeeded" => JobState.Succeeded,
        "failed" => JobState.Failed,
        "dead" => JobState.Dead,
        "cancelled" => JobState.Cancelled,
        _ => JobState.Unspecified,
    };

    internal static Job ToContract(JobRecord job)
    {
        var result = new Job
        {
            Id = job.Id.Value,
            Kind = job.Kind,
            Key = job.IdempotencyKey,
            State = State(job.State),
            Attempts = job.Attempts,
            MaxAttempts = job.MaxAttempts,
            Waits = job.Waits,
            LeaseOwner = job.LeaseOwner ?? "",
            LastError = job.LastError ?? "",
            CancelRequested = job.CancelRequestedAt is not null && job.State is not ("cancelled" or "succeeded"),
            CreateTime = Timestamp.FromDateTimeOffset(job.CreatedAt),
            UpdateTime = Timestamp.FromDateTimeOffset(job.UpdatedAt),
            PayloadJson = job.PayloadJson,
        };
        if (job.State is "queued" or "failed")
        {
            result.NextAttemptTime = Timestamp.FromDateTimeOffset(job.NotBefore);
        }
        if (job.State == "running" && job.LeaseExpiresAt is { } lease)
        {
            result.LeaseExpireTime = Timestamp.FromDateTimeOffset(lease);
        }
        if (job.StartedAt is { } started)
        {
            result.StartTime = Timestamp.FromDateTimeOffset(started);
        }
        if (job.FinishedAt is { } finished)
        {
            result.FinishTime = Timestamp.FromDateTimeOffset(finished);
        }
        return result;
    }
}
