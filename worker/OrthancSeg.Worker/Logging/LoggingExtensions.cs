using System.Globalization;
using Microsoft.Extensions.Options;
using Serilog;

namespace OrthancSeg.Worker.Logging;

internal static class LoggingExtensions
{
    private const string ConsoleTemplate = "[{Timestamp:HH:mm:ss} {Level:u3}] {SourceContext}: {Message:lj}{NewLine}{Exception}";
    private const string FileTemplate = "{Timestamp:yyyy-MM-dd HH:mm:ss.fff zzz} [{Level:u3}] {SourceContext}: {Message:lj}{NewLine}{Exception}";

    /// <summary>
    /// Serilog: console always, a file when OrthancSeg:Logging:File is set; levels from the "Serilog" section
    /// (e.g. Serilog__MinimumLevel__Default=Debug shows every gRPC call).
    /// </summary>
    public static WebApplicationBuilder AddOrthancSegLogging(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<LoggingOptions>().BindConfiguration(LoggingOptions.Section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<LoggingOptions>, LoggingOptionsValidator>();

        // The logger is needed to report invalid options, so it is built from the raw section; a bad file path
        // leaves the console only, and start-up validation then reports the path and stops.
        var options = builder.Configuration.GetSection(LoggingOptions.Section).Get<LoggingOptions>() ?? new LoggingOptions();
        var fileUsable = !string.IsNullOrWhiteSpace(options.File) && new LoggingOptionsValidator().Validate(null, options).Succeeded;

        builder.Services.AddSerilog(configuration =>
        {
            configuration
                .ReadFrom.Configuration(builder.Configuration)
                .Enrich.FromLogContext()
                .WriteTo.Console(outputTemplate: ConsoleTemplate, formatProvider: CultureInfo.InvariantCulture);
            if (fileUsable)
            {
                // shared: replicas on one host may log to the same file.
                configuration.WriteTo.File(options.File!, outputTemplate: FileTemplate, formatProvider: CultureInfo.InvariantCulture, shared: true);
            }
        });
        return builder;
    }
}
