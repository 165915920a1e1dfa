using OrthancSeg.Worker.Orthanc;

namespace OrthancSeg.Worker.Tests.Orthanc;

public sealed class OrthancOptionsValidatorTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public void Orthanc_without_authentication_needs_only_a_url()
    {
        Assert.True(Validate(new OrthancOptions { Url = "http://127.0.0.1:8042" }).Succeeded);
    }

    [Fact]
    public void A_url_that_is_not_http_is_refused_with_an_example()
    {
        var failure = Assert.Single(Validate(new OrthancOptions { Url = "127.0.0.1:8042" }).Failures!);

        Assert.Contains("OrthancSeg:Orthanc:Url '127.0.0.1:8042' is not an absolute http:// or https:// address", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void A_username_without_a_password_file_is_refused()
    {
        var failure = Assert.Single(Validate(new OrthancOptions { Url = "http://127.0.0.1:8042", Username = "orthancseg" }).Failures!);

        Assert.StartsWith("OrthancSeg:Orthanc:PasswordFile is not set but OrthancSeg:Orthanc:Username is", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void A_password_file_that_does_not_exist_is_named()
    {
        var missing = Path.Combine(_directory.Path, "orthanc-password");

        var failure = Assert.Single(Validate(new OrthancOptions { Url = "http://127.0.0.1:8042", Username = "orthancseg", PasswordFile = missing }).Failures!);

        Assert.StartsWith($"OrthancSeg:Orthanc:PasswordFile: file '{missing}' was not found", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void A_ca_file_that_does_not_exist_is_named()
    {
        var missing = Path.Combine(_directory.Path, "link-ca.pem");

        var failure = Assert.Single(Validate(new OrthancOptions { Url = "https://10.0.0.1:8443", CaFile = missing }).Failures!);

        Assert.StartsWith($"OrthancSeg:Orthanc:CaFile: file '{missing}' was not found", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void A_ca_file_without_a_certificate_is_refused()
    {
        var notPem = Path.Combine(_directory.Path, "link-ca.pem");
        File.WriteAllText(notPem, "not a certificate\n");

        var failure = Assert.Single(Validate(new OrthancOptions { Url = "https://10.0.0.1:8443", CaFile = notPem }).Failures!);

        Assert.Contains("holds no PEM certificate", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void A_ca_file_with_plain_http_is_refused_and_with_https_accepted()
    {
        var ca = Path.Combine(_directory.Path, "link-ca.pem");
        using (var key = System.Security.Cryptography.ECDsa.Create())
        {
            var request = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=test CA", key, System.Security.Cryptography.HashAlgorithmName.SHA256);
            using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddDays(1));
            File.WriteAllText(ca, certificate.ExportCertificatePem());
        }

        var failure = Assert.Single(Validate(new OrthancOptions { Url = "http://10.0.0.1:8042", CaFile = ca }).Failures!);
        Assert.Contains("is not https", failure, StringComparison.Ordinal);
        Assert.True(Validate(new OrthancOptions { Url = "https://10.0.0.1:8443", CaFile = ca }).Succeeded);
        Assert.Single(OrthancTrust.Load(ca)!);
    }

    [Fact]
    public void The_base_address_keeps_a_path_prefix()
    {
        Assert.Equal("http://host/orthanc/system", new Uri(new OrthancOptions { Url = "http://host/orthanc" }.BaseAddress, "system").ToString());
    }

    private static Microsoft.Extensions.Options.ValidateOptionsResult Validate(OrthancOptions options) => new OrthancOptionsValidator().Validate(null, options);
}
