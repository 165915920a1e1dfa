using System.Net;
using System.Text;
using System.Text.Json;
using OrthancSeg.IntegrationTests.Fixtures;

namespace OrthancSeg.IntegrationTests.Stack;

/// <summary>
/// The viewer's nginx (rendered from orthanc-config/nginx.conf.template as `make up` renders it) adds Orthanc's credentials,
/// so whoever reaches it must get only what OHIF uses: QIDO/WADO GETs, STOW to /dicom-web/studies, WADO-URI. Requests go
/// through the real nginx in front of the real Orthanc.
/// </summary>
[Collection(OrthancCollection.Name)]
public sealed class ViewerProxyTests(OrthancServer orthanc)
{
    public static TheoryData<string, string> RefusedRequests => new()
    {
        // Would register a remote server that studies can then be pushed to.
        { "PUT", "dicom-web/servers/x" },
        { "GET", "dicom-web/servers" },
        { "POST", "dicom-web/servers/x/stow" },
        { "DELETE", "dicom-web/studies/1.2.3" },
        { "POST", "dicom-web/studies/1.2.3" },
        { "POST", "instances" },
        { "GET", "instances" },
        { "POST", "tools/execute-script" },
        { "POST", "tools/find" },
        { "GET", "system" },
        { "GET", "patients" },
        { "POST", "modalities/x/store" },
        { "POST", "wado" },
        // Encoded CR/LF (header injection towards Orthanc), encoded slashes and dots (a path nginx and Orthanc would read differently).
        { "GET", "dicom-web/studies/%0D%0AX-Injected:%20yes" },
        { "GET", "dicom-web/studies/..%2F..%2Fsystem" },
        { "GET", "dicom-web/studies/%2e%2e/%2e%2e/system" },
    };

    [Theory]
    [MemberData(nameof(RefusedRequests))]
    public async Task The_proxy_refuses_what_OHIF_does_not_use(string method, string path)
    {
        await using var ohif = await OhifServer.StartAsync(orthanc);
        using var client = new HttpClient { BaseAddress = ohif.BaseUrl };
        using var request = new HttpRequestMessage(new HttpMethod(method), new Uri(path, UriKind.Relative));
        if (method is "PUT" or "POST")
        {
            request.Content = new StringContent("""{"Url": "http://127.0.0.1:9"}""", Encoding.UTF8, "application/json");
        }

        using var response = await client.SendAsync(request);

        Assert.True(response.StatusCode == HttpStatusCode.Forbidden, $"{method} /{path} answered {(int)response.StatusCode}, not 403");
    }

    [Fact]
    public async Task A_remote_server_cannot_be_registered_in_Orthanc_through_the_proxy()
    {
        await using var ohif = await OhifServer.StartAsync(orthanc);
        using var client = new HttpClient { BaseAddress = ohif.BaseUrl };
        using var body = new StringContent("""{"Url": "http://127.0.0.1:9"}""", Encoding.UTF8, "application/json");

        using var put = await client.PutAsync(new Uri("dicom-web/servers/proxy-test", UriKind.Relative), body);

        Assert.Equal(HttpStatusCode.Forbidden, put.StatusCode);
        using var orthancClient = orthanc.CreateClient();
        var servers = await orthancClient.GetStringAsync(new Uri("dicom-web/servers", UriKind.Relative));
        Assert.DoesNotContain("proxy-test", servers, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_foreign_Host_header_is_refused()
    {
        await using var ohif = await OhifServer.StartAsync(orthanc);
        using var client = new HttpClient { BaseAddress = ohif.BaseUrl };
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri("dicom-web/studies", UriKind.Relative));
        request.Headers.Host = "attacker.example:80";

        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.MisdirectedRequest, response.StatusCode);
    }

    [Fact]
    public async Task A_patient_name_search_finds_the_study_and_leaves_no_name_in_the_access_log()
    {
        using var series = await CtSeries.CreateAsync(slices: 1);
        await orthanc.UploadAsync(series.Files);
        // make_ct_series.py names the patient Phantom^<PatientID>.
        const string prefix = "Phantom";
        await using var ohif = await OhifServer.StartAsync(orthanc);
        using var client = new HttpClient { BaseAddress = ohif.BaseUrl };
        // As OHIF's study list searches: the name typed by the user, with a wildcard, and a patient id.
        var query = $"dicom-web/studies?PatientName={Uri.EscapeDataString(prefix)}*&PatientID={Uri.EscapeDataString(series.PatientId)}&includefield=00081030%2C00080060";

        var found = await client.GetStringAsync(new Uri(query, UriKind.Relative));

        Assert.Contains(series.StudyInstanceUid, found, StringComparison.Ordinal);
        // nginx writes the line once the answer is sent: wait for it, then look for the search terms.
        string log = "";
        await ProcessRunner.WaitUntilAsync(async () =>
        {
            log = await File.ReadAllTextAsync(ohif.AccessLogPath);
            return log.Split('\n').Count(line => line.Contains("\"GET /dicom-web/studies\" 200", StringComparison.Ordinal)) >= 2;
        }, TimeSpan.FromSeconds(10), "the search's line in nginx's access log");
        Assert.DoesNotContain(prefix, log, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(series.PatientId, log, StringComparison.Ordinal);
        Assert.DoesNotContain("PatientName", log, StringComparison.Ordinal);
    }
}
