namespace OrthancSeg.Worker.Grpc;

internal static class GrpcServiceCollectionExtensions
{
    public static WebApplicationBuilder AddOrthancSegGrpc(this WebApplicationBuilder builder)
    {
        builder.Services.AddGrpc();
        builder.Services.AddGrpcReflection();
        builder.Services.AddGrpcHealthChecks();
        return builder;
    }

    public static WebApplication MapOrthancSegGrpc(this WebApplication app)
    {
        app.MapGrpcHealthChecksService();
        app.MapGrpcReflectionService();
        return app;
    }
}
