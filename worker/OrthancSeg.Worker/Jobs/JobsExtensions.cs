using Microsoft.Extensions.Options;

namespace OrthancSeg.Worker.Jobs;

internal static class JobsExtensions
{
    /// <summary>The durable job queue and its validated options (OrthancSeg:Jobs).</summary>
    public static WebApplicationBuilder AddOrthancSegJobs(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<JobQueueOptions>().BindConfiguration(JobQueueOptions.Section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<JobQueueOptions>, JobQueueOptionsValidator>();
        builder.Services.AddSingleton<JobQueue>();
        return builder;
    }
}
