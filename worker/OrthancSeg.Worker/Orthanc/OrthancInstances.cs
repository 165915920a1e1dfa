using System.Net;
using Microsoft.Extensions.Options;
using OrthancSeg.Dicom;

namespace OrthancSeg.Worker.Orthanc;

/// <summary>A series' instances as fetched: parsed files in memory and how many DICOM bytes came over the wire.</summary>
internal sealed record FetchedSeries(IReadOnlyList<DicomFile> Files, long Bytes);

/// <summary>
/// Fetches DICOM files straight from Orthanc's REST API into memory: the instances of a series with several
/// requests in flight, each file parsed as it arrives. Anything the worker's codec does not decode (JPEG, JPEG 2000,
/// JPEG-LS, big endian) is transcoded by Orthanc to Explicit VR Little Endian (Orthanc 1.10: POST /modify answers the
/// transcoded file without storing it; /file?transcode only exists from 1.12.2).
/// </summary>
internal sealed partial class OrthancInstances(
    OrthancClient orthanc, TranscodeGate gate, IOptions<LimitsOptions> limitsOptions, IOptions<OrthancOptions> orthancOptions, ILogger<OrthancInstances> logger)
{
    private readonly OrthancOptions _options = orthancOptions.Value;

    /// <summary>The caps every file fetched here is read under, and that whoever builds volumes or label maps from them applies.</summary>
    public DicomLimits Limits { get; } = limitsOptions.Value.ToDicomLimits();

    /// <summary>The bytes of the series' DICOM files as Orthanc received them: what <see cref="FetchSeriesAsync"/> will download.</summary>
    public Task<long> SeriesDicomBytesAsync(string orthancSeriesId, CancellationToken cancellationToken) =>
        orthanc.GetSeriesDicomBytesAsync(orthancSeriesId, cancellationToken);

    public async Task<FetchedSeries> FetchSeriesAsync(string orthancSeriesId, int requestsInFlight, CancellationToken cancellationToken)
    {
        var instanceIds = (await RetryingAsync(ct => orthanc.GetSeriesAsync(orthancSeriesId, ct), $"series {orthancSeriesId}", cancellationToken)).Instances;
        var files = new DicomFile[instanceIds.Count];
        long bytes = 0;
        await Parallel.ForEachAsync(Enumerable.Range(0, instanceIds.Count),
            new ParallelOptions { MaxDegreeOfParallelism = requestsInFlight, CancellationToken = cancellationToken },
            async (i, ct) =>
            {
                var (file, size) = await FetchAsync(instanceIds[i], ct);
                files[i] = file;
                Interlocked.Add(ref bytes, size);
            });
        return new FetchedSeries(files, bytes);
    }

    /// <summary>
    /// One instance, transcoded by Orthanc when its transfer syntax is not one the codec decodes. A file Orthanc stored
    /// but cannot transcode is a problem of the file, not of Orthanc: that ends in a <see cref="DicomException"/> too.
    /// </summary>
    public async Task<(DicomFile File, long Bytes)> FetchAsync(string orthancInstanceId, CancellationToken cancellationToken)
    {
        var bytes = await RetryingAsync(ct => orthanc.GetInstanceFileAsync(orthancInstanceId, ct), $"instance {orthancInstanceId}", cancellationToken);
        // The meta decides, before the data set is parsed: the reader refuses big endian files outright.
        if (DicomReader.ReadDeclaredTransferSyntax(bytes) is not { } declared || Decodable(declared))
        {
            return (DicomReader.Read(bytes, Limits), bytes.Length);
        }
        byte[] transcoded;
        await gate.WaitAsync(cancellationToken);
        try
        {
            transcoded = await RetryingAsync(ct => orthanc.GetTranscodedInstanceFileAsync(orthancInstanceId, TransferSyntaxes.ExplicitVRLittleEndian, ct),
                $"instance {orthancInstanceId} (transcoded)", cancellationToken);
        }
        catch (OrthancException e) when (CannotTranscode(e))
        {
            throw new DicomException($"Orthanc cannot transcode the file from {TransferSyntaxes.NameOf(declared)} to Explicit VR Little Endian "
                + $"({e.Details ?? e.StatusCode.ToString()}): its pixel data is damaged or in a form Orthanc's codecs do not read", e);
        }
        finally
        {
            gate.Release();
        }
        return (DicomReader.Read(transcoded, Limits), bytes.Length + transcoded.Length);
    }

    /// <summary>
    /// Runs one request again, after a doubling wait, while Orthanc did not answer, broke off mid-file or answered 502/503/504
    /// (<see cref="OrthancException.IsUnavailable"/>), up to <see cref="OrthancOptions.FetchRetries"/> times: a dropped connection
    /// costs one file, not the whole export. Past that the outage goes to the job engine, which hands the job back without spending
    /// an attempt. Every answer is whole or an exception (<see cref="OrthancClient"/> reads exactly the announced length), so
    /// nothing truncated is ever parsed.
    /// </summary>
    private async Task<T> RetryingAsync<T>(Func<CancellationToken, Task<T>> request, string what, CancellationToken cancellationToken)
    {
        for (var retry = 1; ; retry++)
        {
            try
            {
                return await request(cancellationToken);
            }
            catch (OrthancException e) when (e.IsUnavailable && retry <= _options.FetchRetries)
            {
                var delay = _options.FetchRetryDelay * Math.Pow(2, retry - 1);
                LogRetrying(logger, what, retry, _options.FetchRetries, (long)delay.TotalMilliseconds, e.Message);
                await Task.Delay(delay, cancellationToken);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Fetching {What} from Orthanc failed, retry {Retry} of {Retries} in {DelayMs} ms: {Reason}")]
    private static partial void LogRetrying(ILogger logger, string what, int retry, int retries, long delayMs, string reason);

    /// <summary>
    /// Orthanc 1.10.1 answers a file its codecs cannot decode with 500 and the Details "Cannot transcode to transfer syntax: …"
    /// (OrthancStatus -1, as for any internal error): only those words tell the file's fault from Orthanc's own.
    /// </summary>
    private static bool CannotTranscode(OrthancException e) =>
        e.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.UnsupportedMediaType or HttpStatusCode.NotImplemented
        || (e.StatusCode == HttpStatusCode.InternalServerError && e.Details?.StartsWith("Cannot transcode", StringComparison.Ordinal) == true);

    private static bool Decodable(string transferSyntax) =>
        transferSyntax is TransferSyntaxes.ImplicitVRLittleEndian or TransferSyntaxes.ExplicitVRLittleEndian
            or TransferSyntaxes.DeflatedExplicitVRLittleEndian or TransferSyntaxes.RleLossless;
}

/// <summary>
/// Bounds the transcoding requests this worker has in flight at Orthanc (OrthancSeg:Orthanc:TranscodesInFlight).
/// Orthanc 1.10.1 whose GDCM 3.0.21 plugin decodes first (Orthanc's default order) segfaults in libgdcmMSFF after a
/// dozen JPEG-LS transcodes, serial or not; the stack's orthanc.json therefore sets "BuiltinDecoderTranscoderOrder":
/// "Before" (DCMTK first, GDCM only for what DCMTK cannot decode), with which 200 transcodes, 36 at once, ran clean.
/// </summary>
internal sealed class TranscodeGate(Microsoft.Extensions.Options.IOptions<OrthancOptions> options) : IDisposable
{
    private readonly SemaphoreSlim _semaphore = new(options.Value.TranscodesInFlight, options.Value.TranscodesInFlight);

    public Task WaitAsync(CancellationToken cancellationToken) => _semaphore.WaitAsync(cancellationToken);

    public void Release() => _semaphore.Release();

    public void Dispose() => _semaphore.Dispose();
}
