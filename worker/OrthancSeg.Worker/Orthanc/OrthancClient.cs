using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace OrthancSeg.Worker.Orthanc;

/// <summary>What Orthanc's GET /system reports about itself.</summary>
internal sealed record OrthancSystem(string Version, string Name, int ApiVersion);

/// <summary>A series as Orthanc's GET /series/{id} describes it.</summary>
/// <param name="IsStable">Null when Orthanc does not say (older versions).</param>
internal sealed record OrthancSeries(string Id, string ParentStudy, OrthancTags MainDicomTags, IReadOnlyList<string> Instances, bool? IsStable);

/// <summary>One entry of Orthanc's change log.</summary>
internal sealed record OrthancChange(long Seq, string ChangeType, string ResourceId);

/// <summary>One page of GET /changes: the changes, the last sequence number read, and whether the log is exhausted.</summary>
internal sealed record OrthancChanges(IReadOnlyList<OrthancChange> Changes, long Last, bool Done);

/// <summary>What POST /instances answered: the new (or existing) instance's Orthanc id and Orthanc's status ("Success", "AlreadyStored").</summary>
internal sealed record OrthancUpload(string Id, string Status, string? ParentSeries);

/// <summary>
/// The worker's one client for Orthanc's REST API (a typed HttpClient: base address, basic authentication and
/// timeouts come from <see cref="OrthancOptions"/>). Every request the worker makes to Orthanc is a typed method
/// here, so no caller builds a REST path. Every failure becomes an <see cref="OrthancException"/> whose message names
/// the request and the answer, so callers and logs never have to guess.
/// </summary>
internal sealed class OrthancClient(HttpClient http)
{
    private static readonly MediaTypeHeaderValue Dicom = new("application/dicom");
    private static readonly string[] KeepSopInstanceUid = ["SOPInstanceUID"];

    public Uri BaseAddress => http.BaseAddress ?? throw new InvalidOperationException("OrthancClient was created without a base address");

    public async Task<OrthancSystem> GetSystemAsync(CancellationToken cancellationToken)
    {
        using var document = await GetJsonAsync("system", cancellationToken);
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("Version", out var version) || version.ValueKind != JsonValueKind.String)
        {
            throw Unexpected("system", "without a Version; is this Orthanc?");
        }
        return new OrthancSystem(version.GetString()!,
            root.TryGetProperty("Name", out var name) && name.ValueKind == JsonValueKind.String ? name.GetString()! : "",
            root.TryGetProperty("ApiVersion", out var api) && api.ValueKind == JsonValueKind.Number ? api.GetInt32() : 0);
    }

    /// <summary>A series with its main tags and instance ids; <see cref="OrthancException.IsNotFound"/> when Orthanc has no such series.</summary>
    public async Task<OrthancSeries> GetSeriesAsync(string seriesId, CancellationToken cancellationToken)
    {
        var path = $"series/{Id(seriesId)}";
        using var document = await GetJsonAsync(path, cancellationToken);
        return Series(document.RootElement, path);
    }

    /// <summary>One page of every series in Orthanc, with their main tags (GET /series?expand&amp;since&amp;limit), in Orthanc's order.</summary>
    public async Task<IReadOnlyList<OrthancSeries>> ListSeriesAsync(int since, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(since);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        var path = string.Create(CultureInfo.InvariantCulture, $"series?expand&since={since}&limit={limit}");
        using var document = await GetJsonAsync(path, cancellationToken);
        if (document.RootElement.ValueKind != JsonValueKind.Array)
        {
            throw Unexpected(path, "something other than a list of series");
        }
        return document.RootElement.EnumerateArray().Select(s => Series(s, path)).ToList();
    }

    /// <summary>
    /// The bytes of a series' DICOM files as received (GET /series/{id}/statistics, UncompressedSize: Orthanc 1.10 answers it as a
    /// string of digits, later versions as a number); what an export of the series downloads.
    /// </summary>
    public async Task<long> GetSeriesDicomBytesAsync(string seriesId, CancellationToken cancellationToken)
    {
        var path = $"series/{Id(seriesId)}/statistics";
        using var document = await GetJsonAsync(path, cancellationToken);
        if (document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("UncompressedSize", out var size))
        {
            if (size.ValueKind == JsonValueKind.Number && size.TryGetInt64(out var number))
            {
                return number;
            }
            if (size.ValueKind == JsonValueKind.String && long.TryParse(size.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out var parsed))
            {
                return parsed;
            }
        }
        throw Unexpected(path, "statistics without an UncompressedSize");
    }

    /// <summary>The tags of every instance of a series (GET /series/{id}/instances-tags?simplify), by Orthanc instance id.</summary>
    public async Task<IReadOnlyDictionary<string, OrthancTags>> GetSeriesInstanceTagsAsync(string seriesId, CancellationToken cancellationToken)
    {
        var path = $"series/{Id(seriesId)}/instances-tags?simplify";
        using var document = await GetJsonAsync(path, cancellationToken);
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            throw Unexpected(path, "something other than an object of instances");
        }
        return document.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => new OrthancTags(p.Value.Clone()), StringComparer.Ordinal);
    }

    /// <summary>An instance's tags as Orthanc parsed them when storing it (GET /instances/{id}/simplified-tags).</summary>
    public async Task<OrthancTags> GetInstanceTagsAsync(string instanceId, CancellationToken cancellationToken)
    {
        using var document = await GetJsonAsync($"instances/{Id(instanceId)}/simplified-tags", cancellationToken);
        return new OrthancTags(document.RootElement.Clone());
    }

    /// <summary>The SOP Class UID Orthanc recorded for an instance (its metadata, no file read), or null when it recorded none.</summary>
    public async Task<string?> GetInstanceSopClassUidAsync(string instanceId, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, Resolve($"instances/{Id(instanceId)}/metadata/SopClassUid"));
        using var response = await SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
        var text = (await response.Content.ReadAsStringAsync(cancellationToken)).Trim();
        return text.Length == 0 ? null : text;
    }

    /// <summary>An instance's DICOM file as Orthanc stored it (GET /instances/{id}/file).</summary>
    public Task<byte[]> GetInstanceFileAsync(string instanceId, CancellationToken cancellationToken) =>
        GetBytesAsync(new HttpRequestMessage(HttpMethod.Get, Resolve($"instances/{Id(instanceId)}/file")), cancellationToken);

    /// <summary>
    /// An instance's file transcoded to <paramref name="transferSyntaxUid"/> without storing the result. Orthanc 1.10 has no
    /// /file?transcode (that came with 1.12.2); POST /modify with Transcode, the SOPInstanceUID kept and Force answers the
    /// transcoded file and leaves the stored one alone.
    /// </summary>
    public Task<byte[]> GetTranscodedInstanceFileAsync(string instanceId, string transferSyntaxUid, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(transferSyntaxUid);
        var body = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["Transcode"] = transferSyntaxUid,
            ["Keep"] = KeepSopInstanceUid,
            ["Force"] = true,
        });
        return GetBytesAsync(new HttpRequestMessage(HttpMethod.Post, Resolve($"instances/{Id(instanceId)}/modify"))
        {
            // Orthanc's keys are PascalCase and unknown keys are ignored: JsonContent's web defaults (camelCase) would silently skip the transcoding.
            Content = new StringContent(body, Encoding.UTF8, "application/json"),
        }, cancellationToken);
    }

    /// <summary>Changes after <paramref name="since"/> (GET /changes?since&amp;limit), oldest first.</summary>
    public async Task<OrthancChanges> GetChangesAsync(long since, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(since);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        var path = string.Create(CultureInfo.InvariantCulture, $"changes?since={since}&limit={limit}");
        using var document = await GetJsonAsync(path, cancellationToken);
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object
            || !root.TryGetProperty("Changes", out var changes) || changes.ValueKind != JsonValueKind.Array
            || !root.TryGetProperty("Last", out var last) || last.ValueKind != JsonValueKind.Number
            || !root.TryGetProperty("Done", out var done) || done.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
        {
            throw Unexpected(path, "without Changes, Last and Done");
        }
        var list = new List<OrthancChange>();
        foreach (var change in changes.EnumerateArray())
        {
            if (!change.TryGetProperty("Seq", out var seq) || seq.ValueKind != JsonValueKind.Number)
            {
                throw Unexpected(path, "a change without a Seq");
            }
            list.Add(new OrthancChange(seq.GetInt64(), String(change, "ChangeType") ?? "", String(change, "ID") ?? ""));
        }
        return new OrthancChanges(list, last.GetInt64(), done.GetBoolean());
    }

    /// <summary>The sequence number of Orthanc's last change (GET /changes?last); 0 when its log is empty.</summary>
    public async Task<long> GetLastChangeSeqAsync(CancellationToken cancellationToken)
    {
        const string path = "changes?last";
        using var document = await GetJsonAsync(path, cancellationToken);
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("Last", out var last) || last.ValueKind != JsonValueKind.Number)
        {
            throw Unexpected(path, "without Last");
        }
        // Orthanc answers the last change itself in Changes, and Last as its Seq (0 for an empty log).
        return root.TryGetProperty("Changes", out var changes) && changes.ValueKind == JsonValueKind.Array && changes.GetArrayLength() == 1
            && changes[0].TryGetProperty("Seq", out var seq) && seq.ValueKind == JsonValueKind.Number
            ? Math.Max(seq.GetInt64(), last.GetInt64())
            : last.GetInt64();
    }

    /// <summary>Stores a DICOM Part 10 file (POST /instances); storing the same instance again answers its id with status AlreadyStored.</summary>
    public async Task<OrthancUpload> UploadAsync(ReadOnlyMemory<byte> part10, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, Resolve("instances")) { Content = new ReadOnlyMemoryContent(part10) };
        request.Content.Headers.ContentType = Dicom;
        using var response = await SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
        using var document = await ParseAsync(request, response, cancellationToken);
        var root = document.RootElement;
        // Orthanc answers a list when the body was a ZIP or multipart; the worker only ever sends one file.
        if (root.ValueKind != JsonValueKind.Object || String(root, "ID") is not { } id)
        {
            throw Unexpected("instances", "without the stored instance's ID", "POST");
        }
        return new OrthancUpload(id, String(root, "Status") ?? "", String(root, "ParentSeries"));
    }

    /// <summary>Deletes an instance (DELETE /instances/{id}): only ever one the worker uploaded itself.</summary>
    public async Task DeleteInstanceAsync(string instanceId, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Delete, Resolve($"instances/{Id(instanceId)}"));
        using var _ = await SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
    }

    /// <summary>
    /// Orthanc ids are SHA-1 based "xxxxxxxx-xxxxxxxx-…"; anything else (a slash, "..", a query) would address another
    /// resource than the caller meant, so it is refused before a request is made.
    /// </summary>
    private static string Id(string id)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        if (id.Length > 64 || !id.All(c => char.IsAsciiHexDigit(c) || c == '-'))
        {
            throw new ArgumentException($"'{id}' is not an Orthanc resource id", nameof(id));
        }
        return id;
    }

    private OrthancSeries Series(JsonElement series, string path)
    {
        if (series.ValueKind != JsonValueKind.Object || String(series, "ID") is not { } id
            || !series.TryGetProperty("Instances", out var instances) || instances.ValueKind != JsonValueKind.Array)
        {
            throw Unexpected(path, "a series without an ID or an Instances list");
        }
        var main = series.TryGetProperty("MainDicomTags", out var tags) ? tags.Clone() : default;
        bool? stable = series.TryGetProperty("IsStable", out var s) && s.ValueKind is JsonValueKind.True or JsonValueKind.False ? s.GetBoolean() : null;
        return new OrthancSeries(id, String(series, "ParentStudy") ?? "", new OrthancTags(main),
            instances.EnumerateArray().Where(i => i.ValueKind == JsonValueKind.String).Select(i => i.GetString()!).ToList(), stable);
    }

    private static string? String(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private OrthancException Unexpected(string path, string what, string method = "GET") => new($"Orthanc {method} {Resolve(path)} answered {what}", null);

    private async Task<JsonDocument> GetJsonAsync(string relativePath, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, Resolve(relativePath));
        // Buffered, so that RequestTimeout covers the body too.
        using var response = await SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
        return await ParseAsync(request, response, cancellationToken);
    }

    private static async Task<JsonDocument> ParseAsync(HttpRequestMessage request, HttpResponseMessage response, CancellationToken cancellationToken)
    {
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

    private async Task<byte[]> GetBytesAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        using (request)
        {
            // RequestTimeout covers the body too: HttpClient's own timeout ends with the headers, and a connection that went dead
            // mid-body (the link cut, no RST ever coming) would otherwise keep the read waiting for as long as TCP does.
            using var whole = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            whole.CancelAfter(http.Timeout);
            try
            {
                // Headers first: files can be large, and are read straight into one array below.
                using var response = await SendAsync(request, HttpCompletionOption.ResponseHeadersRead, whole.Token);
                // Into one array of the announced size: ReadAsByteArrayAsync buffers and copies, doubling the large-object garbage per file.
                if (response.Content.Headers.ContentLength is { } length and <= int.MaxValue)
                {
                    var bytes = new byte[length];
                    await using var body = await response.Content.ReadAsStreamAsync(whole.Token);
                    await body.ReadExactlyAsync(bytes, whole.Token);
                    return bytes;
                }
                return await response.Content.ReadAsByteArrayAsync(whole.Token);
            }
            catch (Exception e) when (e is HttpRequestException or EndOfStreamException or IOException)
            {
                throw new OrthancException($"Orthanc {request.Method} {request.RequestUri} broke off while sending the file: {e.Message}", null, e);
            }
            catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                throw new OrthancException($"Orthanc {request.Method} {request.RequestUri} did not send the whole file within {http.Timeout.TotalSeconds:0.#} s "
                    + $"({OrthancOptions.Section}:RequestTimeout)", null, e);
            }
        }
    }

    /// <summary>
    /// Sends a request and returns the successful answer; anything else is an <see cref="OrthancException"/>.
    /// With <see cref="HttpCompletionOption.ResponseHeadersRead"/> (for large files) the caller streams the body
    /// and RequestTimeout no longer covers it.
    /// </summary>
    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, HttpCompletionOption completion, CancellationToken cancellationToken)
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
            var (body, details) = await ExcerptAsync(response, cancellationToken);
            var hint = response.StatusCode == HttpStatusCode.Unauthorized
                ? $"; check {OrthancOptions.Section}:Username and {OrthancOptions.Section}:PasswordFile"
                : "";
            throw new OrthancException(
                $"Orthanc {request.Method} {request.RequestUri} answered {(int)response.StatusCode} {response.ReasonPhrase}{hint}{body}", response.StatusCode,
                details: details);
        }
    }

    /// <summary>Absolute, so that messages name the whole address; relative paths resolve below any prefix of the base address.</summary>
    private Uri Resolve(string relativePath) => new(BaseAddress, relativePath);

    /// <summary>The start of an error answer for the message, and Orthanc's "Details" when the answer is its JSON error.</summary>
    private static async Task<(string Excerpt, string? Details)> ExcerptAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        const int limit = 300;
        string text;
        try
        {
            text = (await response.Content.ReadAsStringAsync(cancellationToken)).Trim();
        }
        catch (HttpRequestException)
        {
            return ("", null);
        }
        string? details = null;
        try
        {
            using var json = JsonDocument.Parse(text);
            details = json.RootElement.ValueKind == JsonValueKind.Object ? String(json.RootElement, "Details") : null;
        }
        catch (JsonException)
        {
            // Not Orthanc's JSON error (a proxy's page, plain text): the excerpt says it all.
        }
        return (text.Length == 0 ? "" : ": " + (text.Length <= limit ? text : text[..limit] + "…"), details);
    }
}
