using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Worker.Cases;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Grpc;
using OrthancSeg.Worker.Jobs;
using OrthancSeg.Worker.Training;
using OrthancSeg.Worker.Workflows;
using ContractInference = OrthancSeg.Contracts.V1.Inference;

namespace OrthancSeg.Worker.Inference;

/// <summary>orthancseg.v1.InferenceService: start, inspect, follow and cancel predictions of cases.</summary>
internal sealed class InferenceService(
    InferenceStore store,
    InferenceStarter starter,
    PredictorBackend backend,
    WorkflowStore workflows,
    CaseStore cases,
    TrainingStore training,
    JobQueue queue,
    JobRunner jobs) : Contracts.V1.InferenceService.InferenceServiceBase
{
    private static readonly TimeSpan WatchPoll = TimeSpan.FromMilliseconds(500);

    public override async Task<StartInferenceResponse> StartInference(StartInferenceRequest request, ServerCallContext context)
    {
        var ct = context.CancellationToken;
        if (request.Workflow.Length == 0)
        {
            throw new InvalidArgumentException("workflow", "is required");
        }
        if ((request.CaseKey.Length == 0) == (request.SeriesInstanceUid.Length == 0))
        {
            throw new InvalidArgumentException("case_key", "give the case key or the series instance UID of the case to predict, not both nor neither");
        }
        var workflow = await workflows.GetAsync(request.Workflow, ct);
        CaseRecord caseRecord;
        if (request.CaseKey.Length > 0)
        {
            caseRecord = await cases.GetAsync(request.CaseKey, ct);
            if (caseRecord.WorkflowId != workflow.Id)
            {
                throw new NotFoundException($"Case {request.CaseKey} is a case of workflow {caseRecord.Workflow}, not of {workflow.Name}");
            }
        }
        else
        {
            caseRecord = (await cases.FindByReferencesAsync([request.SeriesInstanceUid], [], ct)).FirstOrDefault(c => c.WorkflowId == workflow.Id)
                ?? throw new NotFoundException($"Series {request.SeriesInstanceUid} is no case of workflow {workflow.Name}");
        }
        long modelId;
        if (request.ModelId != 0)
        {
            var model = await training.GetModelAsync(request.ModelId, ct);
            modelId = model.WorkflowId == workflow.Id ? model.Id
                : throw new FailedPreconditionException($"Model {model.Id} is a model of workflow {model.Workflow}, not of {workflow.Name}");
        }
        else
        {
            modelId = await store.ActiveModelAsync(workflow.Id, ct)
                ?? throw new FailedPreconditionException($"Workflow {workflow.Name} has no active model; activate one (models activate) or name one (--model)");
        }
        if (await backend.WhyItCanNeverRunAsync(starter.Backend, ct) is { } reason)
        {
            throw new FailedPreconditionException(reason);
        }
        var id = await starter.StartAsync(caseRecord, modelId, ct);
        return new StartInferenceResponse { Inference = ToContract(await store.GetAsync(id, ct)) };
    }

    public override async Task<GetInferenceResponse> GetInference(GetInferenceRequest request, ServerCallContext context) =>
        new() { Inference = ToContract(await store.GetAsync(Id(request.Id), context.CancellationToken)) };

    public override async Task<ListInferencesResponse> ListInferences(ListInferencesRequest request, ServerCallContext context)
    {
        var size = Paging.PageSize(request.PageSize, 50, 500);
        var page = await store.ListAsync(request.Workflow.Length == 0 ? null : request.Workflow, request.CaseKey.Length == 0 ? null : request.CaseKey,
            Paging.IdFromToken(request), size + 1, context.CancellationToken);
        var response = new ListInferencesResponse();
        response.Inferences.AddRange(page.Take(size).Select(ToContract));
        if (page.Count > size)
        {
            response.NextPageToken = Paging.Token(request, page[size - 1].Id);
        }
        return response;
    }

    public override async Task<CancelInferenceResponse> CancelInference(CancelInferenceRequest request, ServerCallContext context)
    {
        var ct = context.CancellationToken;
        var inference = await store.GetAsync(Id(request.Id), ct);
        if (inference.IsFinished || inference.JobId is not { } job)
        {
            throw new FailedPreconditionException($"Inference {inference.Id} is {inference.State}; only a queued or running inference can be cancelled");
        }
        await queue.RequestCancelAsync(new JobId(job), ct);
        jobs.CancelLocal(new JobId(job));
        return new CancelInferenceResponse { Inference = ToContract(await store.GetAsync(inference.Id, ct)) };
    }

    public override async Task WatchInference(WatchInferenceRequest request, IServerStreamWriter<WatchInferenceResponse> responseStream, ServerCallContext context)
    {
        var ct = context.CancellationToken;
        var id = Id(request.Id);
        ContractInference? sent = null;
        while (true)
        {
            var inference = ToContract(await store.GetAsync(id, ct));
            if (!inference.Equals(sent))
            {
                await responseStream.WriteAsync(new WatchInferenceResponse { Inference = inference }, ct);
                sent = inference;
            }
            if (inference.State is not (InferenceState.Queued or InferenceState.Running))
            {
                return;
            }
            await Task.Delay(WatchPoll, ct);
        }
    }

    private static long Id(long id) => id > 0 ? id : throw new InvalidArgumentException("id", $"{id} is not an inference id");

    internal static ContractInference ToContract(InferenceRecord i)
    {
        var result = new ContractInference
        {
            Id = i.Id,
            Workflow = i.Workflow,
            CaseKey = i.CaseKey,
            ModelId = i.ModelId,
            Trigger = i.Trigger == "auto" ? InferenceTrigger.Auto : InferenceTrigger.Manual,
            Backend = i.Backend,
            State = i.State switch
            {
                InferenceStore.Queued => InferenceState.Queued,
                InferenceStore.Running => InferenceState.Running,
                InferenceStore.Succeeded => InferenceState.Succeeded,
                InferenceStore.Failed => InferenceState.Failed,
                _ => InferenceState.Cancelled,
            },
            Outcome = i.Outcome switch
            {
                "seg_stored" => InferenceOutcome.SegStored,
                "no_findings" => InferenceOutcome.NoFindings,
                _ => InferenceOutcome.Unspecified,
            },
            Error = i.Error ?? "",
            Attempts = i.Attempts,
            JobId = i.JobId ?? 0,
            BackendJobId = i.BackendJobId ?? "",
            SegSopInstanceUid = i.SegSopInstanceUid ?? "",
            SegOrthancInstanceId = i.SegOrthancInstanceId ?? "",
            LabelId = i.LabelId ?? 0,
            WorkerMs = i.WorkerMs ?? 0,
            PredictorMs = i.PredictorMs ?? 0,
            CreateTime = Timestamp.FromDateTimeOffset(i.CreatedAt),
        };
        if (i.ExitCode is { } exit)
        {
            result.ExitCode = exit;
        }
        if (i.StartedAt is { } started)
        {
            result.StartTime = Timestamp.FromDateTimeOffset(started);
        }
        if (i.FinishedAt is { } finished)
        {
            result.FinishTime = Timestamp.FromDateTimeOffset(finished);
        }
        return result;
    }
}
