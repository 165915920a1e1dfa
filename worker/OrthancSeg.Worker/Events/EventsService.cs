using System.Text.RegularExpressions;
using Grpc.Core;
using OrthancSeg.Worker.Labels;
using OrthancSeg.Worker.Cases;
using OrthancSeg.Worker.Jobs;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Dicom;
using OrthancSeg.Worker.Errors;

namespace OrthancSeg.Worker.Events;

/// <summary>
/// orthancseg.v1.Events: the bridge's pushes. Each call is validated and becomes one durable job (or finds the
/// job a previous push or the catch-up already made), so the call is one short INSERT and Orthanc's bridge is
/// never held up by the work itself.
/// </summary>
internal sealed partial class EventsService(JobQueue queue) : OrthancSeg.Contracts.V1.Events.EventsBase
{
    public override async Task<NotifyStableSeriesResponse> NotifyStableSeries(NotifyStableSeriesRequest request, ServerCallContext context)
    {
        var problems = new List<FieldProblem>();
        CheckOrthancId(problems, "orthanc_series_id", request.OrthancSeriesId);
        CheckSeq(problems, request.ChangeSeq);
        if (problems.Count > 0)
        {
            throw new InvalidArgumentException(problems);
        }
        var job = await RecordSeriesHandler.EnqueueAsync(queue, request.OrthancSeriesId, request.ChangeSeq, context.CancellationToken);
        return new NotifyStableSeriesResponse { Accepted = job.Created };
    }

    public override async Task<NotifySegmentationStoredResponse> NotifySegmentationStored(NotifySegmentationStoredRequest request, ServerCallContext context)
    {
        var problems = new List<FieldProblem>();
        CheckOrthancId(problems, "orthanc_instance_id", request.OrthancInstanceId);
        CheckSeq(problems, request.ChangeSeq);
        if (string.IsNullOrEmpty(request.SopClassUid))
        {
            problems.Add(new("sop_class_uid", $"is required: the SEG's SOP Class UID ({SopClasses.Segmentation} or {SopClasses.LabelMapSegmentation})"));
        }
        else if (!SopClasses.IsSegmentation(request.SopClassUid))
        {
            problems.Add(new("sop_class_uid", $"'{Excerpt(request.SopClassUid)}' is not a segmentation SOP Class ({SopClasses.Segmentation} or {SopClasses.LabelMapSegmentation})"));
        }
        if (problems.Count > 0)
        {
            throw new InvalidArgumentException(problems);
        }
        var job = await RecordSegmentationHandler.EnqueueAsync(queue, request.OrthancInstanceId, null, context.CancellationToken);
        return new NotifySegmentationStoredResponse { Accepted = job.Created };
    }

    private static void CheckOrthancId(List<FieldProblem> problems, string field, string value)
    {
        if (string.IsNullOrEmpty(value))
        {
            problems.Add(new(field, "is required: Orthanc's id, 5 dash-separated groups of 8 hex digits"));
        }
        else if (!OrthancId().IsMatch(value))
        {
            problems.Add(new(field, $"'{Excerpt(value)}' is not an Orthanc id (5 dash-separated groups of 8 lower-case hex digits)"));
        }
    }

    private static void CheckSeq(List<FieldProblem> problems, long seq)
    {
        if (seq < 0)
        {
            problems.Add(new("change_seq", $"{seq} is negative; use 0 when the sequence number is unknown"));
        }
    }

    private static string Excerpt(string value) => value.Length <= 80 ? value : value[..80] + "…";

    [GeneratedRegex("^[0-9a-f]{8}(-[0-9a-f]{8}){4}$")]
    private static partial Regex OrthancId();
}
