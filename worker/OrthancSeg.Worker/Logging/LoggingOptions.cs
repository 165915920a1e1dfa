using Microsoft.Extensions.Options;

namespace OrthancSeg.Worker.Logging;

internal sealed class LoggingOptions
{
    public const string Section = "OrthancSeg:Logging";

    /// <summary>Optional log file, written in addition to the console (the stack uses .stack/logs/worker.log).</summary>
    public string? File { get; set; }
}

internal sealed class LoggingOptionsValidator : IValidateOptions<LoggingOptions>
{
    public ValidateOptionsResult Validate(string? name, LoggingOptions options)
    {
        if (string.IsNullOrWhiteSpace(options.File))
        {
            return ValidateOptionsResult.Success;
        }
        var key = $"{LoggingOptions.Section}:File";
        if (Directory.Exists(options.File))
        {
            return ValidateOptionsResult.Fail($"{key} '{options.File}' is a directory; name a file inside it, e.g. '{Path.Combine(options.File, "worker.log")}'");
        }
        var directory = Path.GetDirectoryName(Path.GetFullPath(options.File));
        if (directory is not null && !Directory.Exists(directory))
        {
            try
            {
                Directory.CreateDirectory(directory);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return ValidateOptionsResult.Fail($"{key}: the directory of '{options.File}' does not exist and cannot be created ({e.Message})");
            }
        }
        return ValidateOptionsResult.Success;
    }
}
