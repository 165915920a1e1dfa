extern alias WorkerHost;

using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OrthancSeg.Dicom;
using OrthancSeg.IntegrationTests.Fixtures;
using WorkerHost::OrthancSeg.Worker.Orthanc;

namespace OrthancSeg.IntegrationTests.Worker;

/// <summary>The worker's Orthanc client, wired exactly as the worker wires it, against a real Orthanc.</summary>
[Collection(OrthancCollection.Name)]
public sealed class OrthancClientTests(OrthancServer orthanc)
{
    [Fact]
    public async Task With_the_password_file_the_client_reads_orthancs_version()
    {
        await using var app = Build(OrthancUrl, OrthancServer.Username, orthanc.PasswordFile);

        var system = await app.Services.GetRequiredService<OrthancClient>().GetSystemAsync(CancellationToken.None);

        Assert.StartsWith("1.", system.Version, StringComparison.Ordinal);
        Assert.Equal("OrthancSeg", system.Name);
    }

    [Fact]
    public async Task A_wrong_password_fails_with_the_url_the_status_and_what_to_check()
    {
        var wrong = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(wrong, "not-the-password");
            await using var app = Build(OrthancUrl, OrthancServer.Username, wrong);

            var error = await Assert.ThrowsAsync<OrthancException>(() => app.Services.GetRequiredService<OrthancClient>().GetSystemAsync(CancellationToken.None));

            Assert.Equal(HttpStatusCode.Unauthorized, error.StatusCode);
            Assert.False(error.IsUnavailable);
            Assert.Contains($"GET {OrthancUrl}/system answered 401", error.Message, StringComparison.Ordinal);
            Assert.Contains("OrthancSeg:Orthanc:PasswordFile", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(wrong);
        }
    }

    [Fact]
    public async Task A_big_endian_instance_is_fetched_transcoded_to_explicit_little_endian()
    {
        // The codec refuses big endian: the fetch must ask Orthanc to transcode it instead of failing on it.
        var original = await File.ReadAllBytesAsync("/usr/lib/python3/dist-packages/pydicom/data/test_files/ExplVR_BigEnd.dcm");
        using var http = orthanc.CreateClient();
        using var content = new ByteArrayContent(original);
        using var stored = await http.PostAsync(new Uri("instances", UriKind.Relative), content);
        Assert.True(stored.IsSuccessStatusCode, await stored.Content.ReadAsStringAsync());
        using var answer = System.Text.Json.JsonDocument.Parse(await stored.Content.ReadAsStringAsync());
        var id = answer.RootElement.GetProperty("ID").GetString()!;
        await using var app = Build(OrthancUrl, OrthancServer.Username, orthanc.PasswordFile);
        using var scope = app.Services.CreateScope();

        var (file, _) = await scope.ServiceProvider.GetRequiredService<OrthancInstances>().FetchAsync(id, CancellationToken.None);

        Assert.Equal(TransferSyntaxes.ExplicitVRLittleEndian, file.TransferSyntaxUid);
        Assert.Equal(60, file.Dataset.GetInt(DicomTags.Rows));
        // An 8-bit RGB image: its pixels decode as 60 × 80 × 3 bytes once little endian.
        var frame = DicomPixelData.Create(file.Dataset, file.TransferSyntaxUid).GetFrame(0);
        Assert.Equal(60 * 80 * 3, frame.Length);
    }

    [Fact]
    public async Task An_orthanc_that_does_not_listen_is_unavailable_and_named()
    {
        var url = $"http://127.0.0.1:{ProcessRunner.FreePort()}";
        await using var app = Build(url, null, null);

        var error = await Assert.ThrowsAsync<OrthancException>(() => app.Services.GetRequiredService<OrthancClient>().GetSystemAsync(CancellationToken.None));

        Assert.Null(error.StatusCode);
        Assert.True(error.IsUnavailable);
        Assert.Contains($"GET {url}/system failed", error.Message, StringComparison.Ordinal);
    }

    private string OrthancUrl => orthanc.BaseUrl.ToString().TrimEnd('/');

    private static WebApplication Build(string url, string? username, string? passwordFile)
    {
        var builder = WebApplication.CreateBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["OrthancSeg:Orthanc:Url"] = url,
            ["OrthancSeg:Orthanc:Username"] = username,
            ["OrthancSeg:Orthanc:PasswordFile"] = passwordFile,
        });
        builder.AddOrthancSegOrthanc();
        return builder.Build();
    }
}
