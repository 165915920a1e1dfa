using Grpc.Core;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Dicom;
using OrthancSeg.Dicom.Nifti;
using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Worker.Cases;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Grpc;
using OrthancSeg.Worker.Workflows;

namespace OrthancSeg.Worker.Labels;

/// <summary>orthancseg.v1.LabelService: a person's accept or reject of a label, and label maps imported from other tools.</summary>
internal sealed partial class LabelsService(
    LabelStore labels, CaseStore cases, WorkflowStore workflows, CaseSegmentations segmentations, ILogger<LabelsService> logger) : LabelService.LabelServiceBase
{
    public override async Task<AcceptLabelResponse> AcceptLabel(AcceptLabelRequest request, ServerCallContext context)
    {
        var label = await labels.DecideAsync(Id(request.Id), accept: true, null, null, context.CancellationToken);
        LogDecided(logger, label.Id, label.CaseKey, "accepted");
        return new AcceptLabelResponse { Label = RecordsAdmin.ToContract(label) };
    }

    public override async Task<RejectLabelResponse> RejectLabel(RejectLabelRequest request, ServerCallContext context)
    {
        if (string.IsNullOrWhiteSpace(request.Reason))
        {
            throw new InvalidArgumentException("reason", "say why the label is rejected, so the next person can act on it");
        }
        var label = await labels.DecideAsync(Id(request.Id), accept: false, request.Reason.Trim(), null, context.CancellationToken);
        LogDecided(logger, label.Id, label.CaseKey, "rejected");
        return new RejectLabelResponse { Label = RecordsAdmin.ToContract(label) };
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
        return new ImportLabelResponse { Label = RecordsAdmin.ToContract(await labels.GetAsync(id, ct)) };
    }

    private static long Id(long id) => id > 0 ? id : throw new InvalidArgumentException("id", $"{id} is not a label id");

    [LoggerMessage(Level = LogLevel.Information, Message = "Label {LabelId} of case {CaseKey} {Verdict} by a person")]
    private static partial void LogDecided(ILogger logger, long labelId, string caseKey, string verdict);

    [LoggerMessage(Level = LogLevel.Information, Message = "Imported label {LabelId} of case {CaseKey}: SEG {SopInstanceUid} stored as Orthanc instance {OrthancInstanceId}")]
    private static partial void LogImported(ILogger logger, long labelId, string caseKey, string sopInstanceUid, string orthancInstanceId);
}
