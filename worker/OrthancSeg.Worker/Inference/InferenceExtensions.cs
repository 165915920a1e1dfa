using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Jobs;
using OrthancSeg.Worker.Labels;

namespace OrthancSeg.Worker.Inference;

internal static class InferenceExtensions
{
    /// <summary>
    /// Inference (docs/inference.md): options (OrthancSeg:Inference, validated at start), the store, the SEG writer shared with label import,
    /// the predictor on the training backends, and the "inference" job handler in its own pool.
    /// </summary>
    public static WebApplicationBuilder AddOrthancSegInference(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<InferenceOptions>().BindConfiguration(InferenceOptions.Section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<InferenceOptions>, InferenceOptionsValidator>();
        builder.Services.AddSingleton<InferenceStore>();
        builder.Services.AddSingleton<InferenceStarter>();
        builder.Services.AddSingleton<CaseSegmentations>();
        builder.Services.AddScoped<PredictorBackend>();
        builder.Services.AddScoped<CasePredictor>();
        builder.Services.AddJobHandler<PredictCaseHandler>();
        builder.Services.AddJobPool(PredictCaseHandler.PoolName, services => services.GetRequiredService<IOptions<InferenceOptions>>().Value.Concurrency);
        return builder;
    }
}
