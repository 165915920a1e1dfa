using Microsoft.Extensions.Options;

namespace OrthancSeg.Worker.Auth;

internal static class AuthExtensions
{
    /// <summary>Token options, validated on start, the method rules from the contract, and the authenticator the gRPC interceptor uses.</summary>
    public static WebApplicationBuilder AddOrthancSegAuth(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<AuthOptions>().BindConfiguration(AuthOptions.Section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<AuthOptions>, AuthOptionsValidator>();
        builder.Services.AddSingleton(_ => MethodPolicy.FromContracts());
        builder.Services.AddSingleton(services => BearerTokenAuthenticator.FromOptions(
            services.GetRequiredService<IOptions<AuthOptions>>().Value, services.GetRequiredService<MethodPolicy>()));
        builder.Services.AddOptions<TransportOptions>().BindConfiguration(TransportOptions.Section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<TransportOptions>, TransportOptionsValidator>();
        return builder;
    }
}
