using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Worker.Auth;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Grpc;
using OrthancSeg.Worker.Persistence;
using OrthancSeg.Worker.Workflows;
using ContractCase = OrthancSeg.Contracts.V1.Case;

namespace OrthancSeg.Worker.Cases;

/// <summary>orthancseg.v1.CaseService: cases by key, filtered lists of them, and a person taking a case out of training and back.</summary>
internal sealed partial class CasesService(CaseStore cases, WorkflowStore workflows, ILogger<CasesService> logger) : CaseService.CaseServiceBase
{
    /// <summary>Longest exclusion reason accepted: a sentence or a short paragraph, shown in every snapshot report that leaves the case out.</summary>
    internal const int MaxReasonLength = 1000;

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
        var page = await cases.ListAsync(request.Workflow.Length == 0 ? null : request.Workflow, status, request.HasExcluded ? request.Excluded : null,
            before, size + 1, context.CancellationToken);
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

    public override async Task<ExcludeCaseResponse> ExcludeCase(ExcludeCaseRequest request, ServerCallContext context)
    {
        var key = RequestFields.Required(request.CaseKey, "case_key");
        var reason = request.Reason.Trim();
        if (reason.Length == 0)
        {
            throw new InvalidArgumentException("reason", "is required: say why the case must not train a model, so the next person can act on it");
        }
        if (reason.Length > MaxReasonLength)
        {
            throw new InvalidArgumentException("reason", $"has {reason.Length} characters; at most {MaxReasonLength} are kept: say it in fewer words");
        }
        var by = BearerTokenInterceptor.CallerOf(context).TokenName;
        // Control characters are escaped like any stored text, so the reason shows as typed in tables, logs and dataset reports.
        var excluded = await cases.ExcludeAsync(key, StoredText.Clean(reason, MaxReasonLength), by, context.CancellationToken);
        LogExcluded(logger, excluded.CaseKey, by);
        return new ExcludeCaseResponse { Case = ToContract(excluded) };
    }

    public override async Task<IncludeCaseResponse> IncludeCase(IncludeCaseRequest request, ServerCallContext context)
    {
        var by = BearerTokenInterceptor.CallerOf(context).TokenName;
        var included = await cases.IncludeAsync(RequestFields.Required(request.CaseKey, "case_key"), by, context.CancellationToken);
        LogIncluded(logger, included.CaseKey, by);
        return new IncludeCaseResponse { Case = ToContract(included) };
    }

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
        if (c.Exclusion is { } exclusion)
        {
            result.Excluded = true;
            result.ExclusionReason = exclusion.Reason;
            result.ExcludedBy = exclusion.By;
            result.ExcludeTime = Timestamp.FromDateTimeOffset(exclusion.At);
        }
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

    [LoggerMessage(Level = LogLevel.Information, Message = "Case {CaseKey} excluded from training by {TokenName}")]
    private static partial void LogExcluded(ILogger logger, string caseKey, string tokenName);

    [LoggerMessage(Level = LogLevel.Information, Message = "Case {CaseKey} included in training by {TokenName}")]
    private static partial void LogIncluded(ILogger logger, string caseKey, string tokenName);
}
