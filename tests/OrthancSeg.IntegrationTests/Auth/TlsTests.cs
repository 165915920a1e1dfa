using System.Diagnostics;
using OrthancSeg.IntegrationTests.Fixtures;

namespace OrthancSeg.IntegrationTests.Auth;

/// <summary>
/// TLS by configuration: the worker serves https with a PEM certificate and key, the CLI trusts the CA it is given and refuses a
/// certificate it cannot verify; plain HTTP stays on loopback (the worker refuses to serve it beyond, the CLI to send a token to it).
/// </summary>
[Collection(PostgresCollection.Name)]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class TlsTests(PostgresServer postgres) : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("orthancseg-tls-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task The_cli_talks_to_a_tls_worker_through_the_given_ca_and_refuses_one_it_cannot_verify()
    {
        var (ca, certificate, key) = await MakeCertificatesAsync("ca");
        var (otherCa, _, _) = await MakeCertificatesAsync("other");
        await using var worker = await WorkerProcess.StartAsync(postgres, new Dictionary<string, string>
        {
            ["Kestrel:Endpoints:Grpc:Url"] = $"https://127.0.0.1:{ProcessRunner.FreePort()}",
            ["Kestrel:Endpoints:Grpc:Certificate:Path"] = certificate,
            ["Kestrel:Endpoints:Grpc:Certificate:KeyPath"] = key,
        }, trustedCa: ca);

        var trusted = await CliProcess.RunAsync(["audit", "list", "--url", worker.Address, "--token-file", worker.AdminTokenFile, "--ca", ca]);
        var fromEnvironment = await CliProcess.RunAsync(["audit", "list", "--json", "--url", worker.Address, "--token-file", worker.AdminTokenFile],
            new Dictionary<string, string> { ["ORTHANCSEG_CA_FILE"] = ca });
        var untrusted = await CliProcess.RunAsync(["audit", "list", "--url", worker.Address, "--token-file", worker.AdminTokenFile, "--ca", otherCa]);
        var plain = await CliProcess.RunAsync(["audit", "list", "--url", $"http://127.0.0.1:{worker.Port}", "--token-file", worker.AdminTokenFile]);

        Assert.True(trusted.ExitCode == 0, trusted.Stderr);
        Assert.Contains("TOKEN", trusted.Stdout, StringComparison.Ordinal);
        Assert.True(fromEnvironment.ExitCode == 0, fromEnvironment.Stderr);
        Assert.True(untrusted.ExitCode == 8, untrusted.Stderr);
        Assert.Contains($"Cannot reach the worker at {worker.Address}", untrusted.Stderr, StringComparison.Ordinal);
        Assert.Contains("SSL", untrusted.Stderr, StringComparison.OrdinalIgnoreCase);
        Assert.True(plain.ExitCode == 8, plain.Stderr);
    }

    [Fact]
    public async Task The_cli_will_not_send_a_token_in_clear_beyond_loopback_unless_told()
    {
        // 192.0.2.1 is TEST-NET-1 (RFC 5737): nothing is sent there, the CLI refuses before it connects.
        var tokenFile = Path.Combine(_directory, "token");
        await WorkerProcess.WriteSecretAsync(tokenFile, "0123456789abcdef0123456789abcdef");

        var refused = await CliProcess.RunAsync(["audit", "list", "--url", "http://192.0.2.1:50051", "--token-file", tokenFile]);

        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("Refusing to send the token in clear text to http://192.0.2.1:50051/", refused.Stderr, StringComparison.Ordinal);
        Assert.Contains("--insecure-plaintext", refused.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_worker_refuses_plain_http_beyond_loopback_and_a_private_key_others_can_read()
    {
        var (_, certificate, key) = await MakeCertificatesAsync("ca");
        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        var plain = await RunWorkerExpectingExitAsync(new Dictionary<string, string> { ["Kestrel__Endpoints__Grpc__Url"] = $"http://0.0.0.0:{ProcessRunner.FreePort()}" });
        var openKey = await RunWorkerExpectingExitAsync(new Dictionary<string, string>
        {
            ["Kestrel__Endpoints__Grpc__Url"] = $"https://127.0.0.1:{ProcessRunner.FreePort()}",
            ["Kestrel__Endpoints__Grpc__Certificate__Path"] = certificate,
            ["Kestrel__Endpoints__Grpc__Certificate__KeyPath"] = key,
        });

        Assert.Equal(2, plain.ExitCode);
        Assert.Contains("serves plain HTTP beyond loopback", plain.Output, StringComparison.Ordinal);
        Assert.Contains("OrthancSeg:Transport:AllowPlaintextBeyondLoopback", plain.Output, StringComparison.Ordinal);
        Assert.Equal(2, openKey.ExitCode);
        Assert.Contains($"Kestrel:Endpoints:Grpc:Certificate:KeyPath: file '{key}' is open to other users (mode 644)", openKey.Output, StringComparison.Ordinal);
    }

    private async Task<(int ExitCode, string Output)> RunWorkerExpectingExitAsync(Dictionary<string, string> environment)
    {
        var bridge = Path.Combine(_directory, "bridge-token");
        var admin = Path.Combine(_directory, "admin-token");
        await WorkerProcess.WriteSecretAsync(bridge, "bridge-0123456789abcdef0123456789");
        await WorkerProcess.WriteSecretAsync(admin, "admin-0123456789abcdef0123456789");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = _directory };
        info.ArgumentList.Add(BuildOutput.WorkerAssembly);
        info.Environment["OrthancSeg__Database__ConnectionString"] = await postgres.CreateDatabaseAsync("tls");
        info.Environment["OrthancSeg__Auth__BridgeTokenFile"] = bridge;
        info.Environment["OrthancSeg__Auth__AdminTokenFile"] = admin;
        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }

    /// <summary>A CA and a server certificate it signed for 127.0.0.1 and localhost, as PEM files; the key is private (600).</summary>
    private async Task<(string Ca, string Certificate, string Key)> MakeCertificatesAsync(string name)
    {
        var ca = Path.Combine(_directory, $"{name}.pem");
        var caKey = Path.Combine(_directory, $"{name}.key");
        var certificate = Path.Combine(_directory, $"{name}-server.pem");
        var key = Path.Combine(_directory, $"{name}-server.key");
        var request = Path.Combine(_directory, $"{name}-server.csr");
        var extensions = Path.Combine(_directory, $"{name}-server.ext");
        await File.WriteAllTextAsync(extensions, "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
        var timeout = TimeSpan.FromSeconds(60);
        await ProcessRunner.RunAsync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", caKey, "-out", ca, "-days", "2",
            "-subj", $"/CN=OrthancSeg test CA {name}"], timeout);
        await ProcessRunner.RunAsync("openssl", ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", request, "-subj", "/CN=127.0.0.1"], timeout);
        await ProcessRunner.RunAsync("openssl", ["x509", "-req", "-in", request, "-CA", ca, "-CAkey", caKey, "-CAcreateserial", "-out", certificate,
            "-days", "2", "-extfile", extensions], timeout);
        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return (ca, certificate, key);
    }
}
