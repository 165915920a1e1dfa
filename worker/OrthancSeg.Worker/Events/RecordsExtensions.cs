using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Cases;
using OrthancSeg.Worker.Jobs;
using OrthancSeg.Worker.Labels;
using OrthancSeg.Worker.Workflows;

namespace OrthancSeg.Worker.Events;

internal static class RecordsExtensions
{
    /// <summary>Workflows, cases and labels: the Events service, the recording job handlers, the catch-up (their gRPC services are WorkflowsService, CasesService and LabelsService).</summary>
    public static WebApplicationBuilder AddOrthancSegRecords(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<RecordingOptions>().BindConfiguration(RecordingOptions.Section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<RecordingOptions>, RecordingOptionsValidator>();
        builder.Services.AddSingleton<WorkflowStore>();
        builder.Services.AddSingleton<CaseStore>();
        builder.Services.AddSingleton<LabelStore>();
        builder.Services.AddScoped<SeriesRecorder>();
        builder.Services.AddScoped<SegmentationRecorder>();
        builder.Services.AddScoped<WorkflowBackfill>();
        builder.Services.AddJobHandler<RecordSeriesHandler>();
        builder.Services.AddJobHandler<RecordSegmentationHandler>();
        builder.Services.AddJobHandler<BackfillWorkflowHandler>();
        builder.Services.AddJobPool(RecordingOptions.Pool, services => services.GetRequiredService<IOptions<RecordingOptions>>().Value.Concurrency);
        builder.Services.AddHostedService<ChangeCatchUp>();
        return builder;
    }
}
