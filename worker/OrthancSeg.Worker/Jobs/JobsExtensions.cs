using Microsoft.Extensions.Options;

namespace OrthancSeg.Worker.Jobs;

internal static class JobsExtensions
{
    /// <summary>The durable job queue, its validated options (OrthancSeg:Jobs) and the start-up recovery of leases of ended processes.</summary>
    public static WebApplicationBuilder AddOrthancSegJobs(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<JobQueueOptions>().BindConfiguration(JobQueueOptions.Section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<JobQueueOptions>, JobQueueOptionsValidator>();
        builder.Services.AddSingleton<JobQueue>();
        builder.Services.AddHostedService<LeaseRecoveryHostedService>();
        return builder;
    }
}
