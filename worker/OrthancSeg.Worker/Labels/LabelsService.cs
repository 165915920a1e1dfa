using System.Globalization;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Dicom;
using OrthancSeg.Dicom.Nifti;
using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Worker.Cases;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Grpc;
using OrthancSeg.Worker.Workflows;
using ContractLabel = OrthancSeg.Contracts.V1.Label;
using ContractPending = OrthancSeg.Contracts.V1.PendingSegmentation;
using ContractSegmentMatch = OrthancSeg.Contracts.V1.SegmentMatch;

namespace OrthancSeg.Worker.Labels;

/// <summary>orthancseg.v1.LabelService: labels of cases, a person's accept or reject of a label, label maps imported from other tools, and
/// segmentations that wait for their case.</summary>
internal sealed partial class LabelsService(
    LabelStore labels, CaseStore cases, WorkflowStore workflows, CaseSegmentations segmentations, ILogger<LabelsService> logger) : LabelService.LabelServiceBase
{
    public override async Task<GetLabelResponse> GetLabel(GetLabelRequest request, ServerCallContext context) =>
        new() { Label = ToContract(await labels.GetAsync(Id(request.Id), context.CancellationToken)) };

    public override async Task<ListLabelsResponse> ListLabels(ListLabelsRequest request, ServerCallContext context)
    {
        var key = RequestFields.Required(request.CaseKey, "case_key");
        await cases.GetAsync(key, context.CancellationToken);
        var size = Paging.PageSize(request.PageSize, 100, 1000);
        var before = Paging.IdFromToken(request);
        var page = await labels.ListAsync(key, before, size + 1, context.CancellationToken);
        var response = new ListLabelsResponse();
        response.Labels.AddRange(page.Take(size).Select(ToContract));
        if (page.Count > size)
        {
            response.NextPageToken = Paging.Token(request, page[size - 1].Id);
        }
        return response;
    }

    public override async Task<ListPendingSegmentationsResponse> ListPendingSegmentations(ListPendingSegmentationsRequest request, ServerCallContext context)
    {
        var size = Paging.PageSize(request.PageSize, 100, 1000);
        var before = Paging.KeyFromToken(request) is { } key ? PendingCursor(key) : ((DateTimeOffset, string)?)null;
        var page = await labels.ListPendingAsync(before, size + 1, context.CancellationToken);
        var response = new ListPendingSegmentationsResponse();
        response.PendingSegmentations.AddRange(page.Take(size).Select(p => new ContractPending
        {
            SopInstanceUid = p.SopInstanceUid,
            OrthancInstanceId = p.OrthancInstanceId,
            ReferencedSeriesInstanceUids = { p.ReferencedSeriesInstanceUids },
            Reason = p.Reason,
            CreateTime = Timestamp.FromDateTimeOffset(p.CreatedAt),
        }));
        if (page.Count > size)
        {
            var last = page[size - 1];
            response.NextPageToken = Paging.Token(request, $"{last.CreatedAt.UtcTicks.ToString(CultureInfo.InvariantCulture)}/{last.SopInstanceUid}");
        }
        return response;
    }

    public override async Task<AcceptLabelResponse> AcceptLabel(AcceptLabelRequest request, ServerCallContext context)
    {
        var label = await labels.DecideAsync(Id(request.Id), accept: true, null, null, context.CancellationToken);
        LogDecided(logger, label.Id, label.CaseKey, "accepted");
        return new AcceptLabelResponse { Label = ToContract(label) };
    }

    public override async Task<RejectLabelResponse> RejectLabel(RejectLabelRequest request, ServerCallContext context)
    {
        if (string.IsNullOrWhiteSpace(request.Reason))
        {
            throw new InvalidArgumentException("reason", "say why the label is rejected, so the next person can act on it");
        }
        var label = await labels.DecideAsync(Id(request.Id), accept: false, request.Reason.Trim(), null, context.CancellationToken);
        LogDecided(logger, label.Id, label.CaseKey, "rejected");
        return new RejectLabelResponse { Label = ToContract(label) };
    }

    public override async Task<ImportLabelResponse> ImportLabel(ImportLabelRequest request, ServerCallContext context)
    {
        var ct = context.CancellationToken;
        if (request.CaseKey.Length == 0)
        {
            throw new InvalidArgumentException("case_key", "is required");
        }
        if (request.Nifti.IsEmpty)
        {
            throw new InvalidArgumentException("nifti", "is empty: send the label map's NIfTI file");
        }
        var caseRecord = await cases.GetAsync(request.CaseKey, ct);
        var workflow = await workflows.GetAsync(caseRecord.Workflow, ct);
        NiftiImage nifti;
        try
        {
            nifti = NiftiReader.Read(new MemoryStream(request.Nifti.ToByteArray(), writable: false));
        }
        catch (Exception e) when (e is DicomException or InvalidDataException or EndOfStreamException)
        {
            throw new InvalidArgumentException("nifti", $"is not a NIfTI-1 label map: {e.Message}");
        }
        var image = await segmentations.FetchImageAsync(caseRecord, ct);
        StoredSegmentation? stored;
        try
        {
            var labelMap = NiftiLabelMap.OnGrid(nifti, image.Grid, $"The label map of case {caseRecord.CaseKey}");
            var author = string.IsNullOrWhiteSpace(request.Author) ? null : request.Author.Trim();
            stored = await segmentations.StoreAsync(image, labelMap, workflow, new SegmentationWriterOptions(
                SegmentAlgorithmType.Manual,
                SeriesDescription: CaseSegmentations.LongString($"{workflow.Name} imported label"),
                ContentCreatorName: author,
                ContentDescription: "Label map imported with orthancseg labels import"), uidSeed: null, ct);
        }
        catch (DicomException e)
        {
            throw new InvalidArgumentException("nifti", e.Message);
        }
        if (stored is null)
        {
            throw new InvalidArgumentException("nifti", "the label map holds no labelled voxel: there is nothing to import");
        }
        var id = await labels.RecordImportAsync(CaseSegmentations.Label(caseRecord.Id, stored, "import", LabelStore.Accepted,
            string.IsNullOrWhiteSpace(request.Author) ? null : request.Author.Trim()), ct);
        LogImported(logger, id, caseRecord.CaseKey, stored.SopInstanceUid, stored.OrthancInstanceId);
        return new ImportLabelResponse { Label = ToContract(await labels.GetAsync(id, ct)) };
    }

    internal static ContractLabel ToContract(LabelRecord l)
    {
        var result = new ContractLabel
        {
            SopInstanceUid = l.SopInstanceUid,
            OrthancInstanceId = l.OrthancInstanceId,
            CaseKey = l.CaseKey,
            Source = l.Source switch { "model" => LabelSource.Model, "import" => LabelSource.Import, _ => LabelSource.Manual },
            Author = l.Author ?? "",
            Verdict = l.Verdict switch { LabelStore.Accepted => LabelVerdict.Accepted, LabelStore.Proposed => LabelVerdict.Proposed, _ => LabelVerdict.Rejected },
            RejectionReason = l.RejectionReason ?? "",
            IsCurrent = l.IsCurrent,
            PaintedSlices = { l.PaintedSlices },
            CreateTime = Timestamp.FromDateTimeOffset(l.CreatedAt),
            Id = l.Id,
        };
        if (l.AcceptedAt is { } accepted)
        {
            result.AcceptTime = Timestamp.FromDateTimeOffset(accepted);
        }
        result.Segments.AddRange(l.Segments.Select(s => new OrthancSeg.Contracts.V1.SegmentMapping
        {
            SegmentNumber = s.SegmentNumber,
            SegmentLabel = s.SegmentLabel,
            LabelValue = s.LabelValue,
            LabelName = s.LabelName ?? "",
            Match = s.Match switch
            {
                SegmentMatch.Name => ContractSegmentMatch.Name,
                SegmentMatch.Synonym => ContractSegmentMatch.Synonym,
                SegmentMatch.OhifDefaultName => ContractSegmentMatch.OhifDefaultName,
                _ => ContractSegmentMatch.None,
            },
            PaintedFrames = s.PaintedFrames,
        }));
        return result;
    }

    /// <summary>The (created_at, sop_instance_uid) a pending-segmentation token carries as "ticks/uid".</summary>
    private static (DateTimeOffset, string) PendingCursor(string key) =>
        key.Split('/', 2) is [var ticks, var uid] && long.TryParse(ticks, NumberStyles.None, CultureInfo.InvariantCulture, out var t)
            && t <= DateTimeOffset.MaxValue.UtcTicks
            ? (new DateTimeOffset(t, TimeSpan.Zero), uid)
            : throw new InvalidArgumentException("page_token", "is not a token this API returned");

    private static long Id(long id) => id > 0 ? id : throw new InvalidArgumentException("id", $"{id} is not a label id");

    [LoggerMessage(Level = LogLevel.Information, Message = "Label {LabelId} of case {CaseKey} {Verdict} by a person")]
    private static partial void LogDecided(ILogger logger, long labelId, string caseKey, string verdict);

    [LoggerMessage(Level = LogLevel.Information, Message = "Imported label {LabelId} of case {CaseKey}: SEG {SopInstanceUid} stored as Orthanc instance {OrthancInstanceId}")]
    private static partial void LogImported(ILogger logger, long labelId, string caseKey, string sopInstanceUid, string orthancInstanceId);
}
