using Grpc.Core;
using OrthancSeg.Contracts.V1;

namespace OrthancSeg.Worker.Grpc;

/// <summary>The records part of orthancseg.v1.Admin (workflows, cases, labels, dead letters), delegated to <see cref="RecordsAdmin"/>.</summary>
internal sealed partial class AdminService
{
    public override Task<CreateWorkflowResponse> CreateWorkflow(CreateWorkflowRequest request, ServerCallContext context) =>
        records.CreateWorkflowAsync(request, context.CancellationToken);

    public override Task<ListWorkflowsResponse> ListWorkflows(ListWorkflowsRequest request, ServerCallContext context) =>
        records.ListWorkflowsAsync(request, context.CancellationToken);

    public override Task<GetWorkflowResponse> GetWorkflow(GetWorkflowRequest request, ServerCallContext context) =>
        records.GetWorkflowAsync(request, context.CancellationToken);

    public override Task<UpdateWorkflowResponse> UpdateWorkflow(UpdateWorkflowRequest request, ServerCallContext context) =>
        records.UpdateWorkflowAsync(request, context.CancellationToken);

    public override Task<PauseWorkflowResponse> PauseWorkflow(PauseWorkflowRequest request, ServerCallContext context) =>
        records.PauseWorkflowAsync(request, context.CancellationToken);

    public override Task<ResumeWorkflowResponse> ResumeWorkflow(ResumeWorkflowRequest request, ServerCallContext context) =>
        records.ResumeWorkflowAsync(request, context.CancellationToken);

    public override Task<ListCasesResponse> ListCases(ListCasesRequest request, ServerCallContext context) =>
        records.ListCasesAsync(request, context.CancellationToken);

    public override Task<GetCaseResponse> GetCase(GetCaseRequest request, ServerCallContext context) =>
        records.GetCaseAsync(request, context.CancellationToken);

    public override Task<ListLabelsResponse> ListLabels(ListLabelsRequest request, ServerCallContext context) =>
        records.ListLabelsAsync(request, context.CancellationToken);

    public override Task<ListPendingSegmentationsResponse> ListPendingSegmentations(ListPendingSegmentationsRequest request, ServerCallContext context) =>
        records.ListPendingSegmentationsAsync(request, context.CancellationToken);

    public override Task<ListDeadLettersResponse> ListDeadLetters(ListDeadLettersRequest request, ServerCallContext context) =>
        records.ListDeadLettersAsync(request, context.CancellationToken);

    public override Task<RetryDeadLetterResponse> RetryDeadLetter(RetryDeadLetterRequest request, ServerCallContext context) =>
        records.RetryDeadLetterAsync(request, context.CancellationToken);
}
