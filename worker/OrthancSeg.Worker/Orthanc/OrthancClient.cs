using System.Text.Json;

namespace OrthancSeg.Worker.Orthanc;

/// <summary>What Orthanc's GET /system reports about itself.</summary>
internal sealed record OrthancSystem(string Version, string Name, int ApiVersion);

/// <summary>
/// The worker's client for Orthanc's REST API (a typed HttpClient: base address, basic authentication and
/// timeouts come from <see cref="OrthancOptions"/>). Every failure becomes an <see cref="OrthancException"/>
/// whose message names the request and the answer, so callers and logs never have to guess.
/// </summary>
internal sealed class OrthancClient(HttpClient http)
{
    public Uri BaseAddress => http.BaseAddress ?? throw new InvalidOperationException("OrthancClient was created without a base address");

    public async Task<OrthancSystem> GetSystemAsync(CancellationToken cancellationToken)
    {
        using var document = await GetJsonAsync("system", cancellationToken);
        var root = document.RootElement;
        var uri = new Uri(BaseAddress, "system");
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("Version", out var version) || version.ValueKind != JsonValueKind.String)
        {
            throw new OrthancException($"Orthanc GET {uri} answered without a Version; is this Orthanc?", null);
        }
        return new OrthancSystem(version.GetString()!,
            root.TryGetProperty("Name", out var name) && name.ValueKind == JsonValueKind.String ? name.GetString()! : "",
            root.TryGetProperty("ApiVersion", out var api) && api.ValueKind == JsonValueKind.Number ? api.GetInt32() : 0);
    }

    /// <summary>GETs a path relative to Orthanc's REST root (e.g. "series/{id}") and parses the JSON answer.</summary>
    internal async Task<JsonDocument> GetJsonAsync(string relativePath, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(BaseAddress, relativePath));
        // Buffered, so that RequestTimeout covers the body too.
        using var response = await SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
        try
        {
            await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
            return await JsonDocument.ParseAsync(body, cancellationToken: cancellationToken);
        }
        catch (JsonException e)
        {
            throw new OrthancException($"Orthanc {request.Method} {request.RequestUri} answered something that is not JSON: {e.Message}",
                response.StatusCode, e);
        }
    }

    /// <summary>Sends a request and returns the successful answer as soon as its headers arrive; the caller streams the body.</summary>
    internal Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
        SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);

    /// <summary>
    /// Sends a request and returns the successful answer; anything else is an <see cref="OrthancException"/>.
    /// With <see cref="HttpCompletionOption.ResponseHeadersRead"/> (for large files) the caller streams the body
    /// and RequestTimeout no longer covers it.
    /// </summary>
    internal async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, HttpCompletionOption completion, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, completion, cancellationToken);
        }
        catch (HttpRequestException e)
        {
            throw new OrthancException($"Orthanc {request.Method} {request.RequestUri} failed: {e.Message}", null, e);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new OrthancException($"Orthanc {request.Method} {request.RequestUri} did not answer within {http.Timeout.TotalSeconds:0.#} s "
                + $"({OrthancOptions.Section}:RequestTimeout)", null, e);
        }
        if (response.IsSuccessStatusCode)
        {
            return response;
        }
        using (response)
        {
            var body = await ExcerptAsync(response, cancellationToken);
            var hint = response.StatusCode == System.Net.HttpStatusCode.Unauthorized
                ? $"; check {OrthancOptions.Section}:Username and {OrthancOptions.Section}:PasswordFile"
                : "";
            throw new OrthancException(
                $"Orthanc {request.Method} {request.RequestUri} answered {(int)response.StatusCode} {response.ReasonPhrase}{hint}{body}", response.StatusCode);
        }
    }

    private static async Task<string> ExcerptAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        const int limit = 300;
        try
        {
            var text = (await response.Content.ReadAsStringAsync(cancellationToken)).Trim();
            return text.Length == 0 ? "" : ": " + (text.Length <= limit ? text : text[..limit] + "…");
        }
        catch (HttpRequestException)
        {
            return "";
        }
    }
}
