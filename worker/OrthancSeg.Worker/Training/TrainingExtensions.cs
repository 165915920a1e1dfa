using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Training.Local;
using OrthancSeg.Worker.Training.Slurm;

namespace OrthancSeg.Worker.Training;

internal static class TrainingExtensions
{
    /// <summary>
    /// Training's building blocks: options (OrthancSeg:Training:NnUnet, :Local, :Slurm, validated at start), the
    /// nnU-Net command builder, the Slurm client, GPU discovery and the local launcher. The job handlers that use
    /// them register beside them once the job engine takes handlers.
    /// </summary>
    public static WebApplicationBuilder AddOrthancSegTraining(this WebApplicationBuilder builder)
    {
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
        return builder;
    }
}
