namespace OrthancSeg.Worker.Audit;

internal static class AuditExtensions
{
    /// <summary>The audit log the gRPC access interceptor writes and AuditService reads.</summary>
    public static WebApplicationBuilder AddOrthancSegAudit(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<AuditLog>();
        return builder;
    }
}
