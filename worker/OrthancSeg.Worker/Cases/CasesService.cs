using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Grpc;
using OrthancSeg.Worker.Workflows;
using ContractCase = OrthancSeg.Contracts.V1.Case;

namespace OrthancSeg.Worker.Cases;

/// <summary>orthancseg.v1.CaseService: cases by key and filtered lists of them.</summary>
internal sealed class CasesService(CaseStore cases, WorkflowStore workflows) : CaseService.CaseServiceBase
{
    public override async Task<ListCasesResponse> ListCases(ListCasesRequest request, ServerCallContext context)
    {
        var size = Paging.PageSize(request.PageSize, 100, 1000);
        var before = Paging.IdFromToken(request);
        if (request.Workflow.Length > 0)
        {
            await workflows.GetAsync(request.Workflow, context.CancellationToken);
        }
        var status = request.Status switch
        {
            CaseStatus.Unspecified => null,
            CaseStatus.Unlabeled => "unlabeled",
            CaseStatus.Labeled => "labeled",
            CaseStatus.Unusable => "unusable",
            _ => throw new InvalidArgumentException("status", $"{request.Status} is not a case status"),
        };
        var page = await cases.ListAsync(request.Workflow.Length == 0 ? null : request.Workflow, status, before, size + 1, context.CancellationToken);
        var response = new ListCasesResponse();
        response.Cases.AddRange(page.Take(size).Select(ToContract));
        if (page.Count > size)
        {
            response.NextPageToken = Paging.Token(request, page[size - 1].Id);
        }
        return response;
    }

    public override async Task<GetCaseResponse> GetCase(GetCaseRequest request, ServerCallContext context) =>
        new() { Case = ToContract(await cases.GetAsync(RequestFields.Required(request.CaseKey, "case_key"), context.CancellationToken)) };

    private static ContractCase ToContract(CaseRecord c)
    {
        var result = new ContractCase
        {
            CaseKey = c.CaseKey,
            Workflow = c.Workflow,
            Status = c.Status switch { "labeled" => CaseStatus.Labeled, "unusable" => CaseStatus.Unusable, _ => CaseStatus.Unlabeled },
            StatusReason = c.StatusReason ?? "",
            OrthancSeriesId = c.OrthancSeriesId,
            OrthancStudyId = c.OrthancStudyId,
            StudyInstanceUid = c.StudyInstanceUid,
            SeriesInstanceUid = c.SeriesInstanceUid,
            FrameOfReferenceUid = c.FrameOfReferenceUid ?? "",
            SopInstanceUids = { c.SopInstanceUids },
            Modality = c.Modality ?? "",
            SeriesDescription = c.SeriesDescription ?? "",
            BodyPart = c.BodyPart ?? "",
            InstanceCount = c.InstanceCount,
            CurrentLabelSopInstanceUid = c.CurrentLabelSopInstanceUid ?? "",
            LabelCount = c.LabelCount,
            CreateTime = Timestamp.FromDateTimeOffset(c.CreatedAt),
            UpdateTime = Timestamp.FromDateTimeOffset(c.UpdatedAt),
        };
        if (c.Geometry is { } g)
        {
            result.Geometry = new OrthancSeg.Contracts.V1.GeometrySummary
            {
                Columns = g.Columns,
                Rows = g.Rows,
                Slices = g.Slices,
                Spacing = { g.Spacing },
                Origin = { g.Origin },
                Orientation = { g.Orientation },
            };
        }
        return result;
    }
}
