using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Jobs;

namespace OrthancSeg.Worker.Datasets;

internal static class DatasetsExtensions
{
    /// <summary>Dataset snapshots: options (OrthancSeg:Datasets), the export job handler, and the SnapshotService.</summary>
    public static WebApplicationBuilder AddOrthancSegDatasets(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<DatasetOptions>().BindConfiguration(DatasetOptions.Section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<DatasetOptions>, DatasetOptionsValidator>();
        builder.Services.AddSingleton<SnapshotStore>();
        builder.Services.AddScoped<SnapshotExporter>();
        builder.Services.AddScoped<SnapshotsService>();
        builder.Services.AddJobHandler<ExportSnapshotHandler>();
        return builder;
    }
}
