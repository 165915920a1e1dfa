using Microsoft.Extensions.Options;

namespace OrthancSeg.Worker.Datasets;

internal static class DatasetsExtensions
{
    /// <summary>Dataset snapshots: options (OrthancSeg:Datasets), the export job and its runner, and the admin RPCs behind them.</summary>
    public static WebApplicationBuilder AddOrthancSegDatasets(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<DatasetOptions>().BindConfiguration(DatasetOptions.Section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<DatasetOptions>, DatasetOptionsValidator>();
        builder.Services.AddSingleton<SnapshotStore>();
        builder.Services.AddSingleton<SnapshotSignal>();
        builder.Services.AddScoped<SnapshotExporter>();
        builder.Services.AddScoped<SnapshotsAdmin>();
        builder.Services.AddHostedService<SnapshotJobRunner>();
        return builder;
    }
}
