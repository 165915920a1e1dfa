using System.Text.Json;
using OrthancSeg.Dicom;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.Tests.Support;

namespace OrthancSeg.IntegrationTests.TwoHosts;

/// <summary>
/// The two sides made by the stack's own scripts, as docs/deployment.md tells an operator to: in the PACS namespace
/// `make up ROLE=pacs LISTEN=10.231.0.1 PEER=10.231.0.2` (it makes the link's private CA), `make link-bundle`, the
/// bundle handed over, then in the segmentation namespace `make up ROLE=segmentation LISTEN=10.231.0.2 PEER=10.231.0.1
/// LINK=bundle.tar`. One pair for every fact; `make down` on both must leave no process behind (checked when the pair
/// is disposed). Needs root.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class TwoSidedStack : IAsyncLifetime
{
    private LinkedHosts? _hosts;

    public LinkedHosts Hosts => _hosts!;

    public StackSide Pacs { get; private set; } = null!;

    public StackSide Segmentation { get; private set; } = null!;

    /// <summary>The link's CA that the PACS side's make up made (the other side took it from the bundle).</summary>
    public string LinkCa => Path.Combine(Pacs.StackDirectory, "secrets", "link", "link-ca.pem");

    public async Task InitializeAsync()
    {
        Assert.True(Environment.UserName == "root", "network namespaces and make up's service users need root");
        _hosts = await LinkedHosts.CreateAsync();
        Pacs = new StackSide(Hosts.Pacs, "pacs", LinkedHosts.PacsAddress, LinkedHosts.SegmentationAddress);
        Segmentation = new StackSide(Hosts.Segmentation, "segmentation", LinkedHosts.SegmentationAddress, LinkedHosts.PacsAddress);
        Pacs.CopyViewerTarball();
        await Pacs.UpAsync();
        await Pacs.MakeAsync(["link-bundle"], TimeSpan.FromMinutes(1));
        // Copied to the other machine, as scp would.
        var bundle = Path.Combine(Segmentation.PrivateFolder, "link-bundle.tar");
        File.Copy(Path.Combine(Pacs.StackDirectory, "link-bundle.tar"), bundle);
        await Segmentation.UpAsync(bundle);
    }

    public async Task DisposeAsync()
    {
        var left = new List<string>();
        try
        {
            foreach (var side in new[] { Segmentation, Pacs }.Where(s => s is not null))
            {
                await using (side)
                {
                    await side.MakeAsync(["down"], TimeSpan.FromMinutes(3));
                    left.AddRange((await side.ProcessesAsync()).Select(p => $"{side.Role}: {p}"));
                    left.AddRange((await ProcessesInAsync(side.Namespace)).Select(p => $"{side.Role} namespace: {p}"));
                }
            }
        }
        finally
        {
            if (_hosts is not null)
            {
                await _hosts.DisposeAsync();
            }
        }
        if (left.Count > 0)
        {
            throw new InvalidOperationException("make down left processes behind:\n" + string.Join('\n', left));
        }
    }

    /// <summary>Every process in a namespace (ip netns pids), with its command line.</summary>
    private static async Task<IEnumerable<string>> ProcessesInAsync(string ns)
    {
        var pids = await ProcessRunner.RunAsync("ip", ["netns", "pids", ns], TimeSpan.FromSeconds(10));
        return pids.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(pid => $"{pid} {ReadCommandLine(pid)}");
    }

    private static string ReadCommandLine(string pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ');
        }
        catch (IOException)
        {
            return "(exited)";
        }
    }
}

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class TwoSidedStackTests(TwoSidedStack stack) : IClassFixture<TwoSidedStack>
{
    private const string Workflow = "two-sided";

    [Fact]
    public async Task Make_status_on_each_side_exits_0_and_shows_the_link_to_the_other_side_healthy()
    {
        var (pacsHealthy, pacs) = await stack.Pacs.StatusAsync();
        Assert.True(pacsHealthy, pacs);
        Assert.Matches($@"(?m)^\s*Link\s+running\s+worker at {Escaped(LinkedHosts.SegmentationAddress)}:50051 \(gRPC over TLS", pacs);
        // The PACS side runs no worker, the segmentation side no Orthanc.
        Assert.DoesNotMatch(@"(?m)^\s*Worker\s", pacs);

        var (segmentationHealthy, segmentation) = await stack.Segmentation.StatusAsync();
        Assert.True(segmentationHealthy, segmentation);
        Assert.Matches($@"(?m)^\s*Link\s+running\s+Orthanc at https://{Escaped(LinkedHosts.PacsAddress)}:8443 \(TLS", segmentation);
        Assert.DoesNotMatch(@"(?m)^\s*Orthanc\s", segmentation);
    }

    [Fact]
    public async Task A_series_uploaded_to_the_PACS_sides_Orthanc_becomes_a_case_that_the_CLI_lists_on_the_segmentation_side()
    {
        await stack.Segmentation.CliAsync("workflows", "create", "--name", Workflow, "--dataset-id", "31", "--modality", "CT", "--labels", "liver=1");
        var series = new TestSeries(slices: 4, rows: 8, columns: 8);
        var folder = Directory.CreateDirectory(Path.Combine(stack.Pacs.PrivateFolder, "upload")).FullName;
        var netrc = Path.Combine(stack.Pacs.StackDirectory, "secrets", "orthanc.netrc");
        foreach (var (file, index) in series.Files().Select((f, i) => (f, i)))
        {
            var path = Path.Combine(folder, $"slice{index}.dcm");
            await File.WriteAllBytesAsync(path, DicomWriter.ToBytes(file));
            // The upload command make up prints, inside the PACS server.
            await stack.Pacs.RunAsync("curl", ["-sSf", "--netrc-file", netrc, "-X", "POST", "--data-binary", "@" + path, "http://127.0.0.1:8042/instances"]);
        }

        JsonElement? found = null;
        await ProcessRunner.WaitUntilAsync(async () =>
        {
            var cases = JsonDocument.Parse(await stack.Segmentation.CliAsync("cases", "list", "--workflow", Workflow, "--json")).RootElement;
            found = cases.EnumerateArray().Cast<JsonElement?>().FirstOrDefault(c => c!.Value.GetProperty("seriesInstanceUid").GetString() == series.SeriesInstanceUid);
            return found is not null;
        }, TimeSpan.FromMinutes(3), "the series uploaded on the PACS side to become a case on the segmentation side");
        Assert.Equal(series.Slices, found!.Value.GetProperty("instanceCount").GetInt32());
        Assert.Equal("CT", found.Value.GetProperty("modality").GetString());
    }

    [Fact]
    public async Task Plain_text_to_either_link_port_is_refused()
    {
        // nginx's TLS port for the worker: plain HTTP is answered 400 and never reaches Orthanc.
        var plainHttp = await stack.Segmentation.RunAsync("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
            $"http://{LinkedHosts.PacsAddress}:8443/system"]);
        Assert.Equal("400", plainHttp.Trim());

        // The worker's link port: gRPC over TLS with the link's CA answers; plain HTTP/2 (h2c) does not.
        var health = Path.Combine(RepositoryPaths.OrthancConfig, "grpc-health.py");
        var workerLink = $"{LinkedHosts.SegmentationAddress}:50051";
        await stack.Pacs.RunAsync("/usr/bin/python3", [health, workerLink, "", "5", stack.LinkCa]);
        var plainGrpc = await Assert.ThrowsAsync<InvalidOperationException>(() => stack.Pacs.RunAsync("/usr/bin/python3", [health, workerLink, "", "5"]));
        Assert.Contains("exited with", plainGrpc.Message);
    }

    [Fact]
    public async Task Two_sides_with_the_operators_certificates_link_up_and_make_up_refuses_one_of_another_CA_another_address_or_another_key()
    {
        // A second pair on the same two machines, on ports of its own, given on make up only (make status and make down
        // must find them again), with the hospital's certificates instead of the private CA.
        var ports = new Dictionary<string, string>
        {
            ["ORTHANCSEG_PG_PORT"] = "5434", ["ORTHANCSEG_WORKER_PORT"] = "50052", ["ORTHANCSEG_LINK_ORTHANC_PORT"] = "8444",
            ["ORTHANCSEG_ORTHANC_HTTP_PORT"] = "8043", ["ORTHANCSEG_ORTHANC_DICOM_PORT"] = "4243", ["ORTHANCSEG_OHIF_PORT"] = "3001",
        };
        await using var segmentation = new StackSide(stack.Hosts.Segmentation, "segmentation", LinkedHosts.SegmentationAddress, LinkedHosts.PacsAddress);
        await using var pacs = new StackSide(stack.Hosts.Pacs, "pacs", LinkedHosts.PacsAddress, LinkedHosts.SegmentationAddress);
        var certificates = await OperatorCertificates.CreateAsync(Path.Combine(segmentation.PrivateFolder, "operator"),
            LinkedHosts.SegmentationAddress, LinkedHosts.PacsAddress);

        var anotherCa = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            segmentation.UpAsync(environment: certificates.Settings(ports, certificates.ForeignCertificate, certificates.ForeignKey)));
        Assert.Contains("does not chain to ORTHANCSEG_LINK_CA", anotherCa.Message);
        var anotherAddress = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            segmentation.UpAsync(environment: certificates.Settings(ports, certificates.TypoCertificate, certificates.TypoKey)));
        Assert.Contains($"does not name LISTEN={LinkedHosts.SegmentationAddress} as an IP subjectAltName", anotherAddress.Message);
        var anotherKey = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            segmentation.UpAsync(environment: certificates.Settings(ports, certificates.Certificate, certificates.TypoKey)));
        Assert.Contains("is not the private key of ORTHANCSEG_LINK_CERT", anotherKey.Message);
        // Refused before anything was started.
        Assert.Empty(await segmentation.ProcessesAsync());

        await segmentation.UpAsync(environment: certificates.Settings(ports, certificates.Certificate, certificates.Key));
        // From the other machine: the worker's link port serves the operator's certificate, which verifies against the
        // operator's CA for this address, and not against the CA of the link make up made for the first pair.
        var served = await TlsHandshakeAsync(certificates.Ca);
        Assert.Contains(Body(await File.ReadAllTextAsync(certificates.Certificate)), Body(served));
        await Assert.ThrowsAsync<InvalidOperationException>(() => TlsHandshakeAsync(stack.LinkCa));

        // Without the CA's key, the bundle holds the CA certificate and the two shared secrets, no certificate or key.
        await segmentation.MakeAsync(["link-bundle"], TimeSpan.FromMinutes(1));
        var bundle = Path.Combine(pacs.PrivateFolder, "link-bundle.tar");
        File.Copy(Path.Combine(segmentation.StackDirectory, "link-bundle.tar"), bundle);
        var listing = (await ProcessRunner.RunAsync("tar", ["-tf", bundle], TimeSpan.FromSeconds(10))).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["./bridge-token", "./link-ca.pem", "./link-password", "./link.txt"], listing.Where(f => f != "./").Order(StringComparer.Ordinal));
        pacs.CopyViewerTarball();
        await pacs.UpAsync(bundle, certificates.Settings(ports, certificates.PacsCertificate, certificates.PacsKey));

        foreach (var side in new[] { pacs, segmentation })
        {
            var (healthy, status) = await side.StatusAsync();
            Assert.True(healthy, status);
            Assert.Matches(@"(?m)^\s*Link\s+running\s+.*:(50052|8444)\b", status);
        }
        foreach (var side in new[] { segmentation, pacs })
        {
            await side.MakeAsync(["down"], TimeSpan.FromMinutes(3));
            Assert.Empty(await side.ProcessesAsync());
        }
    }

    /// <summary>openssl s_client from the PACS namespace to the second segmentation side's worker, verifying its certificate.</summary>
    private Task<string> TlsHandshakeAsync(string caFile) =>
        stack.Pacs.RunAsync("sh", ["-c", "exec openssl s_client \"$@\" </dev/null", "s_client", "-connect", $"{LinkedHosts.SegmentationAddress}:50052",
            "-CAfile", caFile, "-verify_return_error", "-verify_ip", LinkedHosts.SegmentationAddress, "-alpn", "h2", "-showcerts"]);

    /// <summary>The base64 of a PEM text without its line breaks, to find one certificate inside openssl's output.</summary>
    private static string Body(string pem) => string.Concat(pem.Split('\n').Where(l => !l.StartsWith("-----", StringComparison.Ordinal)).Select(l => l.Trim()));

    private static string Escaped(string address) => address.Replace(".", "\\.", StringComparison.Ordinal);
}

/// <summary>
/// A hospital's own certificates for the link, made with openssl as docs/deployment.md ("Your own certificates") shows:
/// a CA of the test's own (RSA, unlike the private CA make up makes), a certificate for the address, one with a typo in
/// its address, one for the right address from another CA, and the PACS side's.
/// </summary>
internal sealed record OperatorCertificates(string Folder)
{
    public string Ca => Path.Combine(Folder, "hospital-ca.pem");

    public string Certificate => Path.Combine(Folder, "segmentation.pem");

    public string Key => Path.Combine(Folder, "segmentation.key");

    public string TypoCertificate => Path.Combine(Folder, "typo.pem");

    public string TypoKey => Path.Combine(Folder, "typo.key");

    public string ForeignCertificate => Path.Combine(Folder, "foreign.pem");

    public string ForeignKey => Path.Combine(Folder, "foreign.key");

    public string PacsCertificate => Path.Combine(Folder, "pacs.pem");

    public string PacsKey => Path.Combine(Folder, "pacs.key");

    public static async Task<OperatorCertificates> CreateAsync(string folder, string address, string pacsAddress)
    {
        Directory.CreateDirectory(folder);
        var certificates = new OperatorCertificates(folder);
        await CaAsync(folder, "hospital-ca", "Hospital link CA");
        await CaAsync(folder, "foreign-ca", "Another hospital's link CA");
        await CertificateAsync(folder, "segmentation", "hospital-ca", address);
        await CertificateAsync(folder, "typo", "hospital-ca", address + "0");
        await CertificateAsync(folder, "foreign", "foreign-ca", address);
        await CertificateAsync(folder, "pacs", "hospital-ca", pacsAddress);
        return certificates;
    }

    /// <summary>The settings for make up: <paramref name="others"/>, and the CA with this certificate and key.</summary>
    public Dictionary<string, string> Settings(IReadOnlyDictionary<string, string> others, string certificate, string key) =>
        new(others)
        {
            ["ORTHANCSEG_LINK_CA"] = Ca,
            ["ORTHANCSEG_LINK_CERT"] = certificate,
            ["ORTHANCSEG_LINK_KEY"] = key,
        };

    // The commands of docs/deployment.md, "Your own certificates".
    private static Task<string> CaAsync(string folder, string name, string commonName) => OpensslAsync(folder,
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "730", "-subj", $"/CN={commonName}",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", $"{name}.key", "-out", $"{name}.pem"]);

    private static async Task CertificateAsync(string folder, string name, string ca, string address)
    {
        await OpensslAsync(folder, ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", $"/CN={address}", "-keyout", $"{name}.key", "-out", $"{name}.csr"]);
        await File.WriteAllTextAsync(Path.Combine(folder, $"{name}.ext"), $"subjectAltName=IP:{address}\nextendedKeyUsage=serverAuth\n");
        await OpensslAsync(folder, ["x509", "-req", "-in", $"{name}.csr", "-CA", $"{ca}.pem", "-CAkey", $"{ca}.key", "-CAcreateserial",
            "-days", "730", "-extfile", $"{name}.ext", "-out", $"{name}.pem"]);
    }

    private static Task<string> OpensslAsync(string folder, string[] arguments) =>
        ProcessRunner.RunAsync("openssl", arguments, TimeSpan.FromSeconds(60), workingDirectory: folder);
}
