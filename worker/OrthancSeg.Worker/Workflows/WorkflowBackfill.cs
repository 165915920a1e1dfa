using OrthancSeg.Worker.Cases;
using OrthancSeg.Worker.Jobs;
using OrthancSeg.Worker.Orthanc;

namespace OrthancSeg.Worker.Workflows;

/// <summary>
/// The backfill job: a workflow created (or resumed) after series arrived still gets them. Pages through every
/// series in Orthanc with their main tags and enqueues a series job for each one the workflow's rule admits.
/// </summary>
internal sealed partial class WorkflowBackfill(OrthancClient orthanc, WorkflowStore workflows, JobQueue queue, ILogger<WorkflowBackfill> logger)
{
    private const int PageSize = 500;

    public async Task RunAsync(BackfillJob job, CancellationToken cancellationToken)
    {
        var workflow = await workflows.FindAsync(job.Workflow, cancellationToken);
        if (workflow is not { IsActive: true })
        {
            return;
        }
        var since = 0;
        var enqueued = 0;
        while (true)
        {
            var page = await orthanc.ListSeriesAsync(since, PageSize, cancellationToken);
            foreach (var series in page)
            {
                var main = series.MainDicomTags;
                var facts = new SeriesFacts(main.Text("Modality"), main.Text("SeriesDescription"), main.Text("BodyPartExamined"));
                if (!string.Equals(facts.Modality, "SEG", StringComparison.OrdinalIgnoreCase) && workflow.Selection.Matches(facts))
                {
                    await RecordSeriesHandler.EnqueueBackfilledAsync(queue, series.Id, $"backfill-{job.Workflow}-{job.At}", cancellationToken);
                    enqueued++;
                }
            }
            var count = page.Count;
            if (count < PageSize)
            {
                break;
            }
            since += count;
        }
        LogBackfilled(logger, job.Workflow, enqueued);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Backfill of workflow {Workflow} queued {SeriesCount} matching series")]
    private static partial void LogBackfilled(ILogger logger, string workflow, int seriesCount);
}
