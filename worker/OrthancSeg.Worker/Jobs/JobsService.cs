using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Npgsql;
using NpgsqlTypes;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Grpc;

namespace OrthancSeg.Worker.Jobs;

/// <summary>orthancseg.v1.JobService: the jobs table for admins, cancellation, and dead letters.</summary>
internal sealed class JobsService(JobQueue queue, JobRunner runner, NpgsqlDataSource dataSource) : JobService.JobServiceBase
{
    /// <summary>How long CancelJob waits for a running job to stop before answering with the cancel still pending.</summary>
    private static readonly TimeSpan CancelWait = TimeSpan.FromSeconds(10);

    public override async Task<ListJobsResponse> ListJobs(ListJobsRequest request, ServerCallContext context)
    {
        var size = Paging.PageSize(request.PageSize, 100, 1000);
        var before = Paging.IdFromToken(request);
        var page = await queue.ListAsync(request.Kind.Length == 0 ? null : request.Kind, StateName(request.State),
            before is { } id ? new JobId(id) : null, size + 1, context.CancellationToken);
        var response = new ListJobsResponse();
        response.Jobs.AddRange(page.Take(size).Select(ToContract));
        if (page.Count > size)
        {
            response.NextPageToken = Paging.Token(request, page[size - 1].Id.Value);
        }
        return response;
    }

    public override async Task<GetJobResponse> GetJob(GetJobRequest request, ServerCallContext context) =>
        new() { Job = ToContract(await queue.GetAsync(Id(request.Id), context.CancellationToken)) };

    public override async Task<CancelJobResponse> CancelJob(CancelJobRequest request, ServerCallContext context)
    {
        var id = Id(request.Id);
        var job = await queue.RequestCancelAsync(id, context.CancellationToken);
        return new CancelJobResponse { Job = ToContract(await WaitForEndAsync(job, context.CancellationToken)) };
    }

    public override async Task<ListDeadLettersResponse> ListDeadLetters(ListDeadLettersRequest request, ServerCallContext context)
    {
        var size = Paging.PageSize(request.PageSize, 100, 1000);
        var before = Paging.IdFromToken(request);
        await using var command = dataSource.CreateCommand("""
            SELECT id, kind, idempotency_key, attempts, coalesce(last_error, ''), created_at, coalesce(dead_since, created_at)
            FROM dead_letters
            WHERE @before IS NULL OR id < @before
            ORDER BY id DESC
            LIMIT @limit
            """);
        command.Parameters.Add(new NpgsqlParameter("before", NpgsqlDbType.Bigint) { Value = (object?)before ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter<int>("limit", size + 1));
        var response = new ListDeadLettersResponse();
        await using var reader = await command.ExecuteReaderAsync(context.CancellationToken);
        while (await reader.ReadAsync(context.CancellationToken))
        {
            if (response.DeadLetters.Count == size)
            {
                response.NextPageToken = Paging.Token(request, response.DeadLetters[^1].Id);
                break;
            }
            response.DeadLetters.Add(new DeadLetter
            {
                Id = reader.GetInt64(0),
                Kind = reader.GetString(1),
                Key = reader.GetString(2),
                Attempts = reader.GetInt32(3),
                LastError = reader.GetString(4),
                CreateTime = Timestamp.FromDateTimeOffset(reader.GetFieldValue<DateTimeOffset>(5)),
                DeadTime = Timestamp.FromDateTimeOffset(reader.GetFieldValue<DateTimeOffset>(6)),
            });
        }
        return response;
    }

    public override async Task<RetryDeadLetterResponse> RetryDeadLetter(RetryDeadLetterRequest request, ServerCallContext context)
    {
        if (request.Id <= 0)
        {
            throw new InvalidArgumentException("id", $"{request.Id} is not a job id");
        }
        await queue.RetryDeadAsync(new JobId(request.Id), context.CancellationToken);
        return new RetryDeadLetterResponse { Id = request.Id };
    }

    public override async Task<DiscardDeadLetterResponse> DiscardDeadLetter(DiscardDeadLetterRequest request, ServerCallContext context)
    {
        var job = await queue.DiscardDeadAsync(Id(request.Id), context.CancellationToken);
        return new DiscardDeadLetterResponse { Job = ToContract(await WaitForEndAsync(job, context.CancellationToken)) };
    }

    /// <summary>Stops the job here if this process runs it, and waits a while for it to end: a waiting job (queued, failed or dead) is
    /// ended by the next claim, a running one at its next heartbeat, both within a second or two.</summary>
    private async Task<JobRecord> WaitForEndAsync(JobRecord job, CancellationToken cancellationToken)
    {
        runner.CancelLocal(job.Id);
        var deadline = DateTimeOffset.UtcNow + CancelWait;
        while (job.State is not ("cancelled" or "succeeded") && DateTimeOffset.UtcNow < deadline)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken);
            job = await queue.GetAsync(job.Id, cancellationToken);
        }
        return job;
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
