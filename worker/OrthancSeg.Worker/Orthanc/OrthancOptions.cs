using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Configuration;

namespace OrthancSeg.Worker.Orthanc;

/// <summary>How the worker reaches Orthanc's REST API.</summary>
internal sealed class OrthancOptions
{
    public const string Section = "OrthancSeg:Orthanc";

    /// <summary>Orthanc's REST root, e.g. http://127.0.0.1:8042 (a path prefix such as /orthanc/ is kept).</summary>
    public string? Url { get; set; }

    /// <summary>User for HTTP basic authentication; leave unset when Orthanc has authentication off.</summary>
    public string? Username { get; set; }

    /// <summary>File holding the password of <see cref="Username"/>.</summary>
    public string? PasswordFile { get; set; }

    /// <summary>
    /// PEM file of the CA that signed Orthanc's HTTPS certificate (the PACS server's link, docs/deployment.md). When set, an
    /// https <see cref="Url"/> is trusted only if its certificate chains to this CA, not to the system's CAs.
    /// </summary>
    public string? CaFile { get; set; }

    /// <summary>Limit for establishing the TCP connection, so an absent Orthanc is noticed quickly.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Limit for a whole request, answer included.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Transcoding requests (POST /instances/{id}/modify) in flight at Orthanc, over everything this worker fetches. Orthanc
    /// must decode with DCMTK first ("BuiltinDecoderTranscoderOrder": "Before", as the stack configures it): with the GDCM
    /// 3.0.21 plugin first, Orthanc 1.10.1 crashes on JPEG-LS transcodes whatever this is.
    /// </summary>
    public int TranscodesInFlight { get; set; } = 4;

    /// <summary>
    /// How often one DICOM file the worker fetches (series an export or a prediction reads, SEGs it records) is asked for again when Orthanc did not answer, broke off or
    /// answered 502/503/504 (a dropped link, a restart), before the job is handed back as an outage (docs/architecture.md, "Jobs").
    /// The file is only ever used once it has come whole, so a retry never leaves a truncated file behind.
    /// </summary>
    public int FetchRetries { get; set; } = 3;

    /// <summary>The wait before the first retry of a file, doubling for each next one (2 s, 4 s, 8 s by default).</summary>
    public TimeSpan FetchRetryDelay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>The base address with a trailing slash, so relative paths resolve below any prefix.</summary>
    public Uri BaseAddress => new(Url!.TrimEnd('/') + "/", UriKind.Absolute);
}

internal sealed class OrthancOptionsValidator : IValidateOptions<OrthancOptions>
{
    public ValidateOptionsResult Validate(string? name, OrthancOptions options)
    {
        const string section = OrthancOptions.Section;
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.Url))
        {
            failures.Add($"{section}:Url is not set; set it to Orthanc's REST address, e.g. http://127.0.0.1:8042");
        }
        else if (!Uri.TryCreate(options.Url, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
        {
            failures.Add($"{section}:Url '{options.Url}' is not an absolute http:// or https:// address; e.g. http://127.0.0.1:8042");
        }
        if (!string.IsNullOrWhiteSpace(options.CaFile))
        {
            if (!File.Exists(options.CaFile))
            {
                failures.Add($"{section}:CaFile: file '{options.CaFile}' was not found; point it at the PEM certificate of the CA that signed Orthanc's HTTPS certificate");
            }
            else if (OrthancTrust.Load(options.CaFile) is null)
            {
                failures.Add($"{section}:CaFile: file '{options.CaFile}' holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
            }
            if (Uri.TryCreate(options.Url, UriKind.Absolute, out var https) && https.Scheme != Uri.UriSchemeHttps)
            {
                failures.Add($"{section}:CaFile is set but {section}:Url '{options.Url}' is not https; use https:// to reach Orthanc across the link");
            }
        }
        var hasUser = !string.IsNullOrWhiteSpace(options.Username);
        var hasPassword = !string.IsNullOrWhiteSpace(options.PasswordFile);
        if (hasUser && !hasPassword)
        {
            failures.Add($"{section}:PasswordFile is not set but {section}:Username is; point it at the file holding that user's password");
        }
        else if (!hasUser && hasPassword)
        {
            failures.Add($"{section}:Username is not set but {section}:PasswordFile is; set the Orthanc user the password belongs to");
        }
        else if (hasUser && SecretFile.Problem($"{section}:PasswordFile", options.PasswordFile) is { } problem)
        {
            failures.Add(problem);
        }
        if (options.ConnectTimeout <= TimeSpan.Zero)
        {
            failures.Add($"{section}:ConnectTimeout must be positive, e.g. \"00:00:05\"");
        }
        if (options.RequestTimeout <= TimeSpan.Zero)
        {
            failures.Add($"{section}:RequestTimeout must be positive, e.g. \"00:01:00\"");
        }
        if (options.FetchRetries is < 0 or > 10)
        {
            failures.Add($"{section}:FetchRetries must be 0..10, not {options.FetchRetries}");
        }
        if (options.FetchRetryDelay < TimeSpan.Zero || options.FetchRetryDelay > TimeSpan.FromMinutes(1))
        {
            failures.Add($"{section}:FetchRetryDelay must be between 0 and one minute, e.g. \"00:00:02\"");
        }
        if (options.TranscodesInFlight is < 1 or > 64)
        {
            failures.Add($"{section}:TranscodesInFlight must be 1..64, not {options.TranscodesInFlight}");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
