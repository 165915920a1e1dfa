using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using OrthancSeg.Dicom;
using OrthancSeg.Dicom.Nifti;
using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Dicom.Volumes;
using OrthancSeg.Worker.Jobs;
using OrthancSeg.Worker.Orthanc;
using OrthancSeg.Worker.Workflows;

namespace OrthancSeg.Worker.Datasets;

/// <summary>A case left out of a snapshot and why.</summary>
internal sealed record ExcludedCaseReport(string CaseKey, string Reason);

/// <summary>What the snapshots.report column holds.</summary>
internal sealed record SnapshotReport(
    IReadOnlyList<string> Included,
    IReadOnlyList<ExcludedCaseReport> Excluded,
    DatasetVerification? Verification,
    string ChannelName,
    IReadOnlyList<string> RemovedLeftovers,
    bool ReplacedPreviousDataset);

/// <summary>A failure that retrying cannot fix (nothing to export, a workflow nnU-Net cannot use, a dataset that fails verification).</summary>
internal sealed class SnapshotRefusedException(string message, string? reportJson = null) : Exception(message)
{
    public string? ReportJson { get; } = reportJson;
}

/// <summary>
/// Runs one snapshot export: every case of the workflow with a current accepted label becomes
/// imagesTr/&lt;case&gt;_0000.nii.gz and labelsTr/&lt;case&gt;.nii.gz, fetched straight from Orthanc into memory (a few series
/// at a time, several instances in flight per series), written beside the dataset folder, verified with nnU-Net's rules,
/// then swapped into place and recorded. Cases whose series and label are unchanged since the previous snapshot are
/// hard-linked from it (their hashes checked) instead of fetched again. Cases that cannot be used are left out with a reason.
/// </summary>
internal sealed partial class SnapshotExporter(
    SnapshotStore snapshots, WorkflowStore workflows, OrthancInstances orthanc, IOptions<DatasetOptions> options, ILogger<SnapshotExporter> logger)
{
    internal static readonly JsonSerializerOptions ReportJson = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private readonly DatasetOptions _options = options.Value;

    /// <summary>
    /// Runs one attempt of the export. Its scratch folder is its own and is removed whatever ends the attempt early; the swap into
    /// place and the record of the snapshot commit together, fenced by the attempt's lease, so a stale attempt publishes nothing.
    /// </summary>
    public async Task RunAsync(long snapshotId, JobAttempt attempt, CancellationToken cancellationToken)
    {
        var snapshot = await snapshots.FindAsync(snapshotId, cancellationToken);
        if (snapshot is null || snapshot.State == SnapshotStore.Succeeded || !await snapshots.StartAsync(snapshotId, cancellationToken))
        {
            return;
        }
        var clock = Stopwatch.StartNew();
        var workflow = await workflows.GetAsync(snapshot.Workflow, cancellationToken);
        var values = workflow.Labels.Select(l => l.Value).Order().ToList();
        if (values.Where((v, i) => v != i + 1).Any())
        {
            throw new SnapshotRefusedException(
                $"workflow {workflow.Name} has label values {string.Join(", ", values)}; nnU-Net needs consecutive values 1..N (0 is background): renumber the labels");
        }
        var folder = new DatasetFolder(_options.ResolvedRawRoot(), workflow.DatasetId, workflow.DatasetName);
        var leftovers = folder.RemoveLeftovers();
        var building = folder.CreateBuilding(snapshotId, attempt.Number);
        LogStarted(logger, snapshotId, workflow.Name, building);
        try
        {
            await BuildAndPublishAsync(snapshotId, attempt, workflow, folder, building, leftovers, clock, cancellationToken);
        }
        catch (IOException e) when (DiskSpace.IsDiskFull(e))
        {
            // The disk filled while the files were written (the estimate is not a reservation; others write too): a failed attempt,
            // retried later, whose half-built folder goes below like any other.
            throw new IOException(DiskSpace.FilledUp(Path.GetDirectoryName(folder.FinalPath)!, e), e);
        }
        finally
        {
            // After a successful swap this path holds nothing (or the replaced dataset, already removed); otherwise it is this
            // attempt's half-built scratch, which nobody else will use.
            if (Directory.Exists(building))
            {
                Directory.Delete(building, recursive: true);
            }
        }
    }

    private async Task BuildAndPublishAsync(long snapshotId, JobAttempt attempt, Workflow workflow, DatasetFolder folder, string building,
        IReadOnlyList<string> leftovers, Stopwatch clock, CancellationToken cancellationToken)
    {

        var cases = await snapshots.CandidatesAsync(workflow.Id, cancellationToken);
        var excluded = new ConcurrentBag<ExcludedCaseReport>();
        // A case a person took out of training is left out first, labelled or not, so it counts for nothing below (not even the modality).
        foreach (var byPerson in cases.Where(c => c.Exclusion is not null))
        {
            excluded.Add(new(byPerson.CaseKey, byPerson.Exclusion!.ToString()));
        }
        var candidates = cases.Where(c => c.Exclusion is null).ToList();
        foreach (var unlabeled in candidates.Where(c => c.LabelId is null))
        {
            excluded.Add(new(unlabeled.CaseKey, unlabeled.Status == "unusable"
                ? $"the series cannot be used as a volume: {unlabeled.StatusReason ?? "no usable geometry"}"
                : "no accepted label yet"));
        }
        var labeled = candidates.Where(c => c.LabelId is not null).ToList();
        var modality = labeled.GroupBy(c => (c.Modality ?? "").ToUpperInvariant()).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => g.Key).FirstOrDefault() ?? "";
        var channelName = ChannelName(modality);
        foreach (var other in labeled.Where(c => !string.Equals(c.Modality ?? "", modality, StringComparison.OrdinalIgnoreCase)).ToList())
        {
            excluded.Add(new(other.CaseKey, $"modality {other.Modality ?? "(none)"} differs from the dataset's {modality}: one dataset has one channel and one normalisation"));
            labeled.Remove(other);
        }

        var previous = await snapshots.PreviousSucceededAsync(workflow.Id, snapshotId, cancellationToken);
        var previousCases = previous is null ? new Dictionary<long, SnapshotCaseRecord>()
            : (await snapshots.CasesAsync(previous.Id, cancellationToken)).ToDictionary(c => c.CaseId);
        await CheckDiskSpaceAsync(folder, building, labeled, previousCases, cancellationToken);
        using var progress = new Progress(snapshots, snapshotId, labeled.Count);
        // Fetching a series and building its volume is the memory-heavy stage (its DICOM files and the volume at once);
        // at most half the series in flight are in it, the others compress and write, so peaks of several series never add up.
        using var fetchGate = new SemaphoreSlim((_options.SeriesInFlight + 1) / 2);
        await progress.ReportAsync(cancellationToken);

        var included = new ConcurrentBag<SnapshotCaseRecord>();
        var remaining = labeled.Count;
        await Parallel.ForEachAsync(labeled, new ParallelOptions { MaxDegreeOfParallelism = _options.SeriesInFlight, CancellationToken = cancellationToken },
            async (candidate, ct) =>
            {
                var fingerprint = Fingerprint(candidate);
                previousCases.TryGetValue(candidate.CaseId, out var before);
                var result = before is not null && before.LabelSopInstanceUid == candidate.LabelSopInstanceUid && before.SeriesFingerprint == fingerprint
                    ? await ReuseAsync(before, folder.FinalPath, building, ct)
                    : null;
                if (result is not null)
                {
                    progress.Written(result.ImageBytes + result.LabelBytes);
                    LogReused(logger, candidate.CaseKey, previous!.Id);
                }
                else
                {
                    try
                    {
                        result = await ExportCaseAsync(candidate, fingerprint, building, progress, fetchGate, excluded, ct);
                    }
                    catch (OutOfMemoryException e)
                    {
                        // The limits keep what a file may ask for within reach, but several legal series at once can still exhaust
                        // memory: that case is left out, its half-written files removed, and the export goes on.
                        File.Delete(Path.Combine(building, ImageFile(candidate)));
                        File.Delete(Path.Combine(building, LabelFile(candidate)));
                        var reason = $"the worker ran out of memory for this case ({e.Message}); lower OrthancSeg:Datasets:SeriesInFlight or OrthancSeg:Limits:MaxVolumeBytes, or give the worker more memory";
                        excluded.Add(new(candidate.CaseKey, reason));
                        LogExcluded(logger, candidate.CaseKey, reason);
                    }
                }
                if (result is not null)
                {
                    included.Add(result);
                }
                // A case leaves ~300 MB of large-object garbage (DICOM files, volume, label map). Left to the GC's own pace it piles
                // up past 1 GiB under the server GC (measured: 933 MiB–1.9 GiB peak for 20 series); collected here, the
                // worker stays near SeriesInFlight × one series.
                // The last case needs no room after it: skipping it keeps the collection off a one-series export's critical path.
                if (Interlocked.Decrement(ref remaining) > 0)
                {
                    GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: false);
                }
                progress.CaseDone();
                await progress.ReportAsync(ct);
            });

        var includedList = included.OrderBy(c => c.CaseKey, StringComparer.Ordinal).ToList();
        var excludedList = excluded.OrderBy(c => c.CaseKey, StringComparer.Ordinal).ToList();
        if (includedList.Count == 0)
        {
            var report = Serialize(new SnapshotReport([], excludedList, null, channelName, leftovers, false));
            throw new SnapshotRefusedException(
                $"nothing to export: workflow {workflow.Name} has {cases.Count} case(s) and none can be used "
                + $"({string.Join("; ", excludedList.Take(5).Select(e => $"{e.CaseKey}: {e.Reason}"))}{(excludedList.Count > 5 ? "; …" : "")})", report);
        }

        var datasetJson = DatasetJson(workflow, snapshotId, channelName, includedList.Count);
        var datasetJsonBytes = Encoding.UTF8.GetBytes(datasetJson);
        await using (var file = new FileStream(Path.Combine(building, "dataset.json"), FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, useAsync: true))
        {
            await file.WriteAsync(datasetJsonBytes, cancellationToken);
            file.Flush(flushToDisk: true);
        }
        var verifyClock = Stopwatch.StartNew();
        var verification = DatasetVerifier.Verify(building, Math.Max(1, _options.SeriesInFlight), cancellationToken);
        LogVerified(logger, snapshotId, verification.CheckedFiles, verifyClock.ElapsedMilliseconds, verification.Passed);
        if (!verification.Passed)
        {
            var report = Serialize(new SnapshotReport(includedList.Select(c => c.CaseKey).ToList(), excludedList, verification, channelName, leftovers, false));
            throw new SnapshotRefusedException($"the written dataset fails nnU-Net's integrity rules: {string.Join("; ", verification.Problems.Take(5))}", report);
        }

        var replaced = Directory.Exists(folder.FinalPath);
        clock.Stop();
        var finalReport = Serialize(new SnapshotReport(includedList.Select(c => c.CaseKey).ToList(), excludedList, verification, channelName, leftovers, replaced));
        await snapshots.SucceedAsync(snapshotId, attempt, () => folder.SwapIn(building), includedList, excludedList.Count, datasetJson,
            Convert.ToHexStringLower(SHA256.HashData(datasetJsonBytes)), finalReport, progress.Transfer, progress.BytesWritten, clock.ElapsedMilliseconds,
            cancellationToken);
        var transfer = progress.Transfer;
        LogTransfer(logger, snapshotId, transfer.BytesRead, transfer.InstancesRead, transfer.FetchMs, transfer.MegabytesPerSecond,
            transfer.InstancesPerSecond);
        var reused = includedList.Count(c => c.Reused);
        LogSucceeded(logger, snapshotId, workflow.Name, folder.FinalPath, includedList.Count, excludedList.Count, reused, clock.ElapsedMilliseconds);
    }

    /// <summary>
    /// Refuses the export before anything is fetched when the dataset folder's filesystem has less room than the cases to fetch
    /// need (<see cref="DiskSpace.Needed"/>); cases the previous snapshot holds unchanged are hard-linked and need none.
    /// </summary>
    private async Task CheckDiskSpaceAsync(DatasetFolder folder, string building, List<ExportCandidate> labeled,
        Dictionary<long, SnapshotCaseRecord> previousCases, CancellationToken cancellationToken)
    {
        long dicomBytes = 0;
        foreach (var candidate in labeled)
        {
            if (previousCases.TryGetValue(candidate.CaseId, out var before) && before.LabelSopInstanceUid == candidate.LabelSopInstanceUid
                && before.SeriesFingerprint == Fingerprint(candidate))
            {
                continue;
            }
            dicomBytes += await orthanc.SeriesDicomBytesAsync(candidate.OrthancSeriesId, cancellationToken);
        }
        var needed = DiskSpace.Needed(dicomBytes);
        var free = DiskSpace.Free(building);
        if (needed > free)
        {
            throw new SnapshotRefusedException(DiskSpace.NotEnough(Path.GetDirectoryName(folder.FinalPath)!, needed, free)
                + string.Create(CultureInfo.InvariantCulture, $" ({DiskSpace.Headroom} × the {dicomBytes} DICOM bytes of the cases to fetch); free space or set OrthancSeg:Datasets:RawRoot elsewhere"));
        }
    }

    /// <summary>nnU-Net picks its normalisation by channel name: "CT" gets the dataset-wide CT scheme, anything else per-case z-scoring.</summary>
    internal static string ChannelName(string modality) => modality.ToUpperInvariant() switch
    {
        "CT" => "CT",
        "MR" => "MR",
        "" => "image",
        var other => other,
    };

    internal static string DatasetJson(Workflow workflow, long snapshotId, string channelName, int numTraining)
    {
        var labels = new JsonObject { ["background"] = 0 };
        foreach (var label in workflow.Labels.OrderBy(l => l.Value))
        {
            labels[label.Name] = label.Value;
        }
        var json = new JsonObject
        {
            ["channel_names"] = new JsonObject { ["0"] = channelName },
            ["labels"] = labels,
            ["numTraining"] = numTraining,
            ["file_ending"] = ".nii.gz",
            ["name"] = workflow.DatasetName,
            ["description"] = string.Create(CultureInfo.InvariantCulture, $"OrthancSeg snapshot {snapshotId} of workflow {workflow.Name}"),
        };
        return json.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n";
    }

    /// <summary>Same Orthanc series with the same slices in the same order: the image file of the previous snapshot is still right.</summary>
    internal static string Fingerprint(ExportCandidate candidate) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(candidate.OrthancSeriesId + "\n" + string.Join("\n", candidate.SopInstanceUids))));

    private static async Task<SnapshotCaseRecord?> ReuseAsync(SnapshotCaseRecord before, string previousDataset, string building, CancellationToken cancellationToken)
    {
        var pairs = new[] { (before.ImageFile, before.ImageSha256), (before.LabelFile, before.LabelSha256) };
        foreach (var (file, sha) in pairs)
        {
            var source = Path.Combine(previousDataset, file);
            var target = Path.Combine(building, file);
            if (!File.Exists(source))
            {
                return Discard();
            }
            DatasetFolder.LinkOrCopy(source, target);
            await using var stream = new FileStream(target, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
            if (Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken)) != sha)
            {
                // Someone changed the previous dataset on disk: fetch again rather than carry a file whose content is unknown.
                return Discard();
            }
        }
        return before with { Reused = true };

        SnapshotCaseRecord? Discard()
        {
            foreach (var (file, _) in pairs)
            {
                File.Delete(Path.Combine(building, file));
            }
            return null;
        }
    }

    private async Task<SnapshotCaseRecord?> ExportCaseAsync(ExportCandidate candidate, string fingerprint, string building, Progress progress,
        SemaphoreSlim fetchGate, ConcurrentBag<ExcludedCaseReport> excluded, CancellationToken cancellationToken)
    {
        var imageFile = ImageFile(candidate);
        var labelFile = LabelFile(candidate);
        await fetchGate.WaitAsync(cancellationToken);
        var clock = Stopwatch.StartNew();
        long fetchMs;
        var instances = 0;
        SeriesVolume series;
        try
        {
            FetchedSeries? fetched = await progress.FetchingAsync(() => orthanc.FetchSeriesAsync(candidate.OrthancSeriesId, _options.RequestsPerSeries, cancellationToken));
            progress.Fetched(fetched.Bytes, fetched.Files.Count);
            fetchMs = clock.ElapsedMilliseconds;
            // An async method keeps its locals alive in its state machine: the fetched files (~105 MB for a 512×512×200 CT) are
            // let go explicitly once the volume holds their voxels.
            try
            {
                series = SeriesVolumeBuilder.Build(fetched.Files, orthanc.Limits);
                instances = fetched.Files.Count;
                fetched = null;
            }
            catch (DicomException e)
            {
                excluded.Add(new(candidate.CaseKey, $"the series was refused by the volume builder: {e.Message}"));
                LogExcluded(logger, candidate.CaseKey, e.Message);
                return null;
            }
        }
        finally
        {
            fetchGate.Release();
        }
        var buildMs = clock.ElapsedMilliseconds - fetchMs;
        var writeOptions = new NiftiWriteOptions { CompressionLevel = _options.CompressionLevel };
        var imagePath = Path.Combine(building, imageFile);
        // The image is compressed while the SEG is fetched and rasterised: the one is CPU, the other mostly waiting on Orthanc.
        var imageWrite = Task.Run(() => NiftiCaseFiles.Write(series.Volume, imagePath, writeOptions), cancellationToken);
        LabelMapResult labelMap;
        try
        {
            var (segFile, segBytes) = await progress.FetchingAsync(() => orthanc.FetchAsync(candidate.LabelOrthancInstanceId!, cancellationToken));
            progress.Fetched(segBytes, 1);
            labelMap = SegmentationReader.Read(segFile, series.Grid, Mapping(candidate.LabelSegmentsJson), orthanc.Limits);
        }
        catch (DicomException e)
        {
            await imageWrite;
            File.Delete(imagePath);
            excluded.Add(new(candidate.CaseKey, $"label {candidate.LabelSopInstanceUid} does not fit the series: {e.Message}"));
            LogExcluded(logger, candidate.CaseKey, e.Message);
            return null;
        }
        catch
        {
            // Fetching the SEG failed (Orthanc down): let the image write finish before the attempt fails, so no writer outlives it.
            await Task.WhenAny(imageWrite);
            throw;
        }
        string labelSha;
        long labelBytes;
        try
        {
            (labelSha, labelBytes) = NiftiCaseFiles.Write(labelMap.LabelMap, Path.Combine(building, labelFile), writeOptions);
        }
        catch
        {
            // Out of disk or memory writing the label: the image writer finishes before the failure goes on, so no writer outlives the case.
            await Task.WhenAny(imageWrite);
            throw;
        }
        var (imageSha, imageBytes) = await imageWrite;
        progress.Written(imageBytes + labelBytes);
        LogCaseWritten(logger, candidate.CaseKey, instances, fetchMs, buildMs, clock.ElapsedMilliseconds - fetchMs - buildMs);
        return new SnapshotCaseRecord(candidate.CaseId, candidate.CaseKey, candidate.LabelId!.Value, candidate.LabelSopInstanceUid!, fingerprint,
            imageFile, imageSha, imageBytes, labelFile, labelSha, labelBytes, Reused: false);
    }

    private static string ImageFile(ExportCandidate candidate) => $"imagesTr/{NiftiCaseFiles.ImageFileName(candidate.CaseKey)}";

    private static string LabelFile(ExportCandidate candidate) => $"labelsTr/{NiftiCaseFiles.LabelFileName(candidate.CaseKey)}";

    /// <summary>The label's recorded segment → value mapping (made when the label was accepted), for the SEG reader.</summary>
    private static SegmentMapping Mapping(string? segmentsJson)
    {
        using var document = JsonDocument.Parse(segmentsJson ?? "[]");
        var pairs = document.RootElement.EnumerateArray()
            .Where(s => s.GetProperty("label_value").GetInt32() > 0)
            .Select(s => (Label: (s.GetProperty("segment_label").GetString() ?? "").Trim(), Value: (byte)s.GetProperty("label_value").GetInt32()))
            .GroupBy(p => p.Label, StringComparer.OrdinalIgnoreCase)
            .Select(g => new KeyValuePair<string, byte>(g.Key, g.First().Value));
        return new SegmentMapping(pairs);
    }

    internal static string Serialize(SnapshotReport report) => JsonSerializer.Serialize(report, ReportJson);

    /// <summary>Counters shared by the parallel cases, written to the snapshot row for WatchSnapshot.</summary>
    private sealed class Progress(SnapshotStore store, long snapshotId, int total) : IDisposable
    {
        private readonly SemaphoreSlim _write = new(1, 1);
        private readonly Lock _fetchLock = new();
        // Runs while at least one fetch is in flight: the transfer's wall time, parallel fetches counted once.
        private readonly Stopwatch _fetchClock = new();
        private int _fetching;
        private long _bytesRead;
        private long _instancesRead;
        private long _bytesWritten;
        private int _done;

        public long BytesWritten => Interlocked.Read(ref _bytesWritten);

        public SnapshotTransfer Transfer
        {
            get
            {
                lock (_fetchLock)
                {
                    return new(Interlocked.Read(ref _bytesRead), Interlocked.Read(ref _instancesRead), _fetchClock.ElapsedMilliseconds);
                }
            }
        }

        /// <summary>Runs one fetch from Orthanc with the transfer clock running.</summary>
        public async Task<T> FetchingAsync<T>(Func<Task<T>> fetch)
        {
            lock (_fetchLock)
            {
                if (_fetching++ == 0)
                {
                    _fetchClock.Start();
                }
            }
            try
            {
                return await fetch();
            }
            finally
            {
                lock (_fetchLock)
                {
                    if (--_fetching == 0)
                    {
                        _fetchClock.Stop();
                    }
                }
            }
        }

        public void Fetched(long bytes, int instances)
        {
            Interlocked.Add(ref _bytesRead, bytes);
            Interlocked.Add(ref _instancesRead, instances);
        }

        public void Written(long bytes) => Interlocked.Add(ref _bytesWritten, bytes);

        public void CaseDone() => Interlocked.Increment(ref _done);

        public void Dispose() => _write.Dispose();

        public async Task ReportAsync(CancellationToken cancellationToken)
        {
            await _write.WaitAsync(cancellationToken);
            try
            {
                await store.ProgressAsync(snapshotId, total, Volatile.Read(ref _done), Transfer, BytesWritten, cancellationToken);
            }
            finally
            {
                _write.Release();
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Snapshot {SnapshotId} of workflow {Workflow}: building in {Path}")]
    private static partial void LogStarted(ILogger logger, long snapshotId, string workflow, string path);

    [LoggerMessage(Level = LogLevel.Information, Message = "Snapshot {SnapshotId}: {Files} files verified in {ElapsedMs} ms; passed: {Passed}")]
    private static partial void LogVerified(ILogger logger, long snapshotId, int files, long elapsedMs, bool passed);

    [LoggerMessage(Level = LogLevel.Information, Message = "Case {CaseKey} unchanged since snapshot {PreviousSnapshotId}: files reused")]
    private static partial void LogReused(ILogger logger, string caseKey, long previousSnapshotId);

    [LoggerMessage(Level = LogLevel.Information,
        Message = "Case {CaseKey}: {Instances} instances fetched in {FetchMs} ms, volume built in {BuildMs} ms, label read and both files written in {WriteMs} ms")]
    private static partial void LogCaseWritten(ILogger logger, string caseKey, int instances, long fetchMs, long buildMs, long writeMs);

    [LoggerMessage(Level = LogLevel.Information,
        Message = "Snapshot {SnapshotId}: fetched {BytesRead} DICOM bytes ({Instances} instances) from Orthanc in {FetchMs} ms: {MegabytesPerSecond} MB/s, {InstancesPerSecond} instances/s")]
    private static partial void LogTransfer(ILogger logger, long snapshotId, long bytesRead, long instances, long fetchMs, double megabytesPerSecond,
        double instancesPerSecond);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Case {CaseKey} left out of the snapshot: {Reason}")]
    private static partial void LogExcluded(ILogger logger, string caseKey, string reason);

    [LoggerMessage(Level = LogLevel.Information,
        Message = "Snapshot {SnapshotId} of workflow {Workflow} is in {Path}: {Included} cases ({Reused} reused), {Excluded} left out, {ElapsedMs} ms")]
    private static partial void LogSucceeded(ILogger logger, long snapshotId, string workflow, string path, int included, int excluded, int reused, long elapsedMs);
}
