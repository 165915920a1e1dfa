using System.Net.Http.Headers;
using System.Text;
using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Configuration;

namespace OrthancSeg.Worker.Orthanc;

internal static class OrthancExtensions
{
    /// <summary>
    /// Orthanc options, validated on start, <see cref="OrthancClient"/> as a typed HttpClient, and
    /// <see cref="OrthancInstances"/>, the one way the worker fetches DICOM files (transcoded when needed), and the
    /// <see cref="LimitsOptions"/> every file it reads is held to.
    /// </summary>
    public static WebApplicationBuilder AddOrthancSegOrthanc(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<OrthancOptions>().BindConfiguration(OrthancOptions.Section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<OrthancOptions>, OrthancOptionsValidator>();
        builder.Services.AddOptions<LimitsOptions>().BindConfiguration(LimitsOptions.Section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<LimitsOptions>, LimitsOptionsValidator>();
        builder.Services.AddHttpClient<OrthancClient>((services, http) =>
            {
                var options = services.GetRequiredService<IOptions<OrthancOptions>>().Value;
                http.BaseAddress = options.BaseAddress;
                http.Timeout = options.RequestTimeout;
                if (!string.IsNullOrWhiteSpace(options.Username))
                {
                    var password = SecretFile.Read($"{OrthancOptions.Section}:PasswordFile", options.PasswordFile!);
                    http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic",
                        Convert.ToBase64String(Encoding.UTF8.GetBytes($"{options.Username}:{password}")));
                }
            })
            .ConfigurePrimaryHttpMessageHandler(services =>
            {
                var options = services.GetRequiredService<IOptions<OrthancOptions>>().Value;
                var handler = new SocketsHttpHandler
                {
                    ConnectTimeout = options.ConnectTimeout,
                    PooledConnectionLifetime = TimeSpan.FromMinutes(5),
                };
                if (!string.IsNullOrWhiteSpace(options.CaFile))
                {
                    handler.SslOptions = OrthancTrust.ClientOptions(OrthancTrust.Load(options.CaFile)!);
                }
                return handler;
            });
        builder.Services.AddSingleton<TranscodeGate>();
        builder.Services.AddScoped<OrthancInstances>();
        return builder;
    }
}
