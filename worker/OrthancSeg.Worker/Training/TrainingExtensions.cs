using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Jobs;
using OrthancSeg.Worker.Training.Backends;
using OrthancSeg.Worker.Training.Local;
using OrthancSeg.Worker.Training.Slurm;

namespace OrthancSeg.Worker.Training;

internal static class TrainingExtensions
{
    /// <summary>
    /// Training dispatch: options (OrthancSeg:Training and its :NnUnet, :Local, :Slurm sections, validated at start), the nnU-Net
    /// command builder, the Slurm client, the local GPUs and launcher, the backend runner training steps and predictions share, the run store, the two step handlers in the "training" pool, and the
    /// workflows' training defaults and retrain policy with its periodic check (pool "retrain").
    /// </summary>
    public static WebApplicationBuilder AddOrthancSegTraining(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<TrainingOptions>().BindConfiguration(TrainingOptions.Section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<TrainingOptions>, TrainingOptionsValidator>();
        builder.Services.AddOptions<NnUnetOptions>().BindConfiguration(NnUnetOptions.Section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<NnUnetOptions>, NnUnetOptionsValidator>();
        builder.Services.AddOptions<LocalOptions>().BindConfiguration(LocalOptions.Section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<LocalOptions>, LocalOptionsValidator>();
        builder.Services.AddOptions<SlurmOptions>().BindConfiguration(SlurmOptions.Section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<SlurmOptions>, SlurmOptionsValidator>();
        builder.Services.AddSingleton<NnUnetCommands>();
        builder.Services.AddSingleton<SlurmClient>();
        builder.Services.AddSingleton<GpuDiscovery>();
        builder.Services.AddSingleton<LocalProcessLauncher>();
        builder.Services.AddSingleton<LocalResources>();
        builder.Services.AddSingleton<BackendRunner>();
        builder.Services.AddSingleton<TrainingStore>();
        builder.Services.AddSingleton<WorkflowTrainingStore>();
        builder.Services.AddSingleton<RetrainStore>();
        builder.Services.AddScoped<WorkflowTraining>();
        builder.Services.AddScoped<TrainingStarter>();
        builder.Services.AddScoped<TrainingStepRunner>();
        builder.Services.AddJobHandler<PreprocessHandler>();
        builder.Services.AddJobHandler<TrainFoldHandler>();
        builder.Services.AddJobHandler<RetrainCheckHandler>();
        // Checks are short and only move triggers along: one at a time per worker is plenty.
        builder.Services.AddJobPool(RetrainCheckHandler.Pool, _ => 1);
        builder.Services.AddJobPool(TrainingStepRunner.Pool, services => services.GetRequiredService<IOptions<TrainingOptions>>().Value.Concurrency);
        return builder;
    }
}
