using OrthancSeg.Worker.Logging;

namespace OrthancSeg.Worker.Tests.Logging;

public sealed class LoggingOptionsValidatorTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public void No_file_means_console_only_and_is_valid()
    {
        Assert.True(new LoggingOptionsValidator().Validate(null, new LoggingOptions()).Succeeded);
    }

    [Fact]
    public void A_directory_instead_of_a_file_is_refused_with_a_suggestion()
    {
        var result = new LoggingOptionsValidator().Validate(null, new LoggingOptions { File = _directory.Path });

        Assert.Contains($"'{Path.Combine(_directory.Path, "worker.log")}'", Assert.Single(result.Failures!), StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_log_directory_is_created()
    {
        var file = Path.Combine(_directory.Path, "logs", "worker.log");

        Assert.True(new LoggingOptionsValidator().Validate(null, new LoggingOptions { File = file }).Succeeded);
        Assert.True(Directory.Exists(Path.GetDirectoryName(file)));
    }
}
