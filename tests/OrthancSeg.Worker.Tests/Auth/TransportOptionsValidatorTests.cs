using Microsoft.Extensions.Configuration;
using OrthancSeg.Worker.Auth;

namespace OrthancSeg.Worker.Tests.Auth;

public sealed class TransportOptionsValidatorTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Theory]
    [InlineData("http://127.0.0.1:50051")]
    [InlineData("http://localhost:50051")]
    [InlineData("http://[::1]:50051")]
    public void Plain_http_on_loopback_is_the_default_and_fine(string url)
    {
        Assert.True(Validate(new() { ["Kestrel:Endpoints:Grpc:Url"] = url }).Succeeded);
    }

    [Theory]
    [InlineData("http://0.0.0.0:50051")]
    [InlineData("http://*:50051")]
    [InlineData("http://10.1.2.3:50051")]
    public void Plain_http_beyond_loopback_is_refused_unless_allowed(string url)
    {
        var refused = Validate(new() { ["Kestrel:Endpoints:Grpc:Url"] = url });
        var allowed = Validate(new() { ["Kestrel:Endpoints:Grpc:Url"] = url }, new TransportOptions { AllowPlaintextBeyondLoopback = true });

        Assert.Contains("serves plain HTTP beyond loopback", Assert.Single(refused.Failures!), StringComparison.Ordinal);
        Assert.True(allowed.Succeeded);
    }

    [Fact]
    public void Https_needs_a_certificate_that_exists_and_a_private_key()
    {
        var missing = Validate(new() { ["Kestrel:Endpoints:Grpc:Url"] = "https://0.0.0.0:50051" });
        var open = Validate(new()
        {
            ["Kestrel:Endpoints:Grpc:Url"] = "https://0.0.0.0:50051",
            ["Kestrel:Endpoints:Grpc:Certificate:Path"] = _directory.Write("cert.pem", "-----BEGIN CERTIFICATE-----"),
            ["Kestrel:Endpoints:Grpc:Certificate:KeyPath"] = _directory.Write("key.pem", "-----BEGIN PRIVATE KEY-----",
                UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead),
        });
        var good = Validate(new()
        {
            ["Kestrel:Endpoints:Grpc:Url"] = "https://0.0.0.0:50051",
            ["Kestrel:Endpoints:Grpc:Certificate:Path"] = _directory.Write("cert2.pem", "-----BEGIN CERTIFICATE-----"),
            ["Kestrel:Endpoints:Grpc:Certificate:KeyPath"] = _directory.Write("key2.pem", "-----BEGIN PRIVATE KEY-----"),
        });

        Assert.Contains("Kestrel:Endpoints:Grpc:Certificate:Path is not set", Assert.Single(missing.Failures!), StringComparison.Ordinal);
        Assert.Contains("Kestrel:Endpoints:Grpc:Certificate:KeyPath: file", Assert.Single(open.Failures!), StringComparison.Ordinal);
        Assert.Contains("is open to its group", Assert.Single(open.Failures!), StringComparison.Ordinal);
        Assert.True(good.Succeeded, string.Join("; ", good.Failures ?? []));
    }

    private static Microsoft.Extensions.Options.ValidateOptionsResult Validate(Dictionary<string, string?> settings, TransportOptions? options = null) =>
        new TransportOptionsValidator(new ConfigurationBuilder().AddInMemoryCollection(settings).Build()).Validate(null, options ?? new TransportOptions());
}
