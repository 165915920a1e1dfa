using OrthancSeg.Worker.Auth;
using OrthancSeg.Worker.Health;

namespace OrthancSeg.Worker.Grpc;

internal static class GrpcServiceCollectionExtensions
{
    /// <summary>gRPC with call logging and bearer-token authentication, reflection, and the standard health service.</summary>
    public static WebApplicationBuilder AddOrthancSegGrpc(this WebApplicationBuilder builder)
    {
        builder.Services.AddGrpc(options =>
        {
            // Order matters: the first is outermost, so rejected calls are logged with their status too, and every
            // exception a handler throws is a status before it is logged and before the audit log records how the call ended.
            options.Interceptors.Add<CallLoggingInterceptor>();
            options.Interceptors.Add<BearerTokenInterceptor>();
            options.Interceptors.Add<ErrorMappingInterceptor>();
        });
        builder.Services.AddGrpcReflection();
        // Maps every registered health check (PostgreSQL, from AddOrthancSegPersistence) to the "" service.
        builder.Services.AddGrpcHealthChecks();
        builder.Services.AddTransient<SystemStatusReporter>();
        builder.Services.AddTransient<BackendStatus>();
        return builder;
    }

    public static WebApplication MapOrthancSegGrpc(this WebApplication app)
    {
        app.MapGrpcHealthChecksService();
        app.MapGrpcReflectionService();
        app.MapGrpcService<SystemStatusService>();
        app.MapGrpcService<Workflows.WorkflowsService>();
        app.MapGrpcService<Cases.CasesService>();
        app.MapGrpcService<Datasets.SnapshotsService>();
        app.MapGrpcService<Events.EventsService>();
        app.MapGrpcService<Jobs.JobsService>();
        app.MapGrpcService<Training.TrainingService>();
        app.MapGrpcService<Training.ModelsService>();
        app.MapGrpcService<Inference.InferenceService>();
        app.MapGrpcService<Labels.LabelsService>();
        app.MapGrpcService<Audit.AuditService>();
        return app;
    }
}
