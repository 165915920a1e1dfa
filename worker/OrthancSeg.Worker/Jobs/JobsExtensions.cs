using Microsoft.Extensions.Options;

namespace OrthancSeg.Worker.Jobs;

/// <summary>A kind of job a feature registered, and the pool whose slots it runs in.</summary>
internal sealed record JobKindRegistration(string Kind, Type HandlerType, string Pool);

/// <summary>A pool of job slots: how many jobs of its kinds this worker runs at once, read from the feature's options at start.</summary>
internal sealed record JobPool(string Name, Func<IServiceProvider, int> Size);

internal static class JobsExtensions
{
    /// <summary>
    /// The job engine: the durable queue, its validated options (OrthancSeg:Jobs), the one runner, and the start-up recovery of leases
    /// of ended processes. Features add their kinds with <see cref="AddJobHandler{THandler}"/>.
    /// </summary>
    public static WebApplicationBuilder AddOrthancSegJobs(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<JobQueueOptions>().BindConfiguration(JobQueueOptions.Section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<JobQueueOptions>, JobQueueOptionsValidator>();
        builder.Services.AddSingleton<JobSignal>();
        builder.Services.AddSingleton<JobQueue>();
        builder.Services.AddSingleton<DependencyOutages>();
        builder.Services.AddHostedService<LeaseRecoveryHostedService>();
        builder.Services.AddSingleton<JobRunner>();
        builder.Services.AddHostedService(services => services.GetRequiredService<JobRunner>());
        return builder;
    }

    /// <summary>Registers the handler of one kind of job; it is resolved in a fresh scope for every attempt.</summary>
    public static IServiceCollection AddJobHandler<THandler>(this IServiceCollection services) where THandler : class, IJobHandler, IJobKind
    {
        services.AddKeyedScoped<IJobHandler, THandler>(THandler.Kind);
        services.AddSingleton(new JobKindRegistration(THandler.Kind, typeof(THandler), THandler.Pool));
        return services;
    }

    /// <summary>Sets how many jobs of a pool's kinds run at once in this worker (1 when a pool is not declared).</summary>
    public static IServiceCollection AddJobPool(this IServiceCollection services, string name, Func<IServiceProvider, int> size)
    {
        services.AddSingleton(new JobPool(name, size));
        return services;
    }
}
