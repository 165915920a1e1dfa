using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Options;
using OrthancSeg.Dicom.Nifti;
using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Worker.Cases;
using OrthancSeg.Worker.Datasets;
using OrthancSeg.Worker.Jobs;
using OrthancSeg.Worker.Labels;
using OrthancSeg.Worker.Training;
using OrthancSeg.Worker.Workflows;

namespace OrthancSeg.Worker.Inference;

/// <summary>
/// One attempt of an inference: the case's series is fetched and written as the predictor's input (as the dataset export writes images),
/// nnUNetv2_predict runs on the backend, the prediction is checked to lie on the image grid, written as a BINARY SEG (AUTOMATIC, the model as
/// the algorithm) and stored in the case's study in Orthanc, and the SEG is recorded as a proposed model label in the same fenced transaction
/// that ends the job. An empty prediction records "no findings" and stores nothing. Anything that goes wrong fails the attempt with its reason;
/// the job engine retries it within bounds and then makes it a dead letter.
/// </summary>
internal sealed partial class CasePredictor(
    InferenceStore store,
    CaseStore cases,
    WorkflowStore workflows,
    TrainingStore training,
    CaseSegmentations segmentations,
    PredictorBackend backend,
    NnUnetCommands commands,
    IOptions<NnUnetOptions> nnunetOptions,
    IOptions<DatasetOptions> datasetOptions,
    IOptions<InferenceOptions> options,
    ILogger<CasePredictor> logger)
{
    private readonly InferenceOptions _options = options.Value;

    public async Task RunAsync(long inferenceId, JobAttempt attempt, CancellationToken cancellationToken)
    {
        if (!await store.StartAttemptAsync(inferenceId, cancellationToken))
        {
            // Ended already: an earlier attempt recorded the outcome but not the job's end (a worker killed in between), or it was cancelled.
            return;
        }
        var inference = await store.GetAsync(inferenceId, cancellationToken);
        var workerClock = Stopwatch.StartNew();
        var caseRecord = await cases.GetAsync(inference.CaseKey, cancellationToken);
        var workflow = await workflows.GetAsync(inference.Workflow, cancellationToken);
        var model = await training.GetModelAsync(inference.ModelId, cancellationToken);
        var image = await segmentations.FetchImageAsync(caseRecord, cancellationToken);
        LogFetched(logger, inferenceId, caseRecord.CaseKey, image.Bytes, image.Instances, image.FetchMs,
            image.FetchMs <= 0 ? 0 : Math.Round(image.Bytes / 1e3 / image.FetchMs, 1));

        var paths = nnunetOptions.Value.Paths(datasetOptions.Value.ResolvedRawRoot());
        var reattach = PredictorBackend.WasStarted(inference);
        var directory = reattach ? inference.RunDirectory! : Path.Combine(ScratchFolder(inference.Id), $"attempt-{inference.Attempts}");
        var input = Path.Combine(directory, "in");
        var output = Path.Combine(directory, "out");
        if (!reattach)
        {
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
            Directory.CreateDirectory(input);
            NiftiCaseFiles.Write(image.Series.Volume, Path.Combine(input, NiftiCaseFiles.ImageFileName(caseRecord.CaseKey)),
                new NiftiWriteOptions { CompressionLevel = datasetOptions.Value.CompressionLevel });
        }
        var command = commands.Predict(new NnUnetModelSpec(workflow.DatasetId, workflow.DatasetName, model.Configuration, model.Trainer, model.Plans),
            paths, input, output, model.Folds, _options.Gpus, _options.Cpus);
        workerClock.Stop();

        var predicted = await backend.RunAsync(inference, command, directory, cancellationToken);
        if (!predicted.Succeeded)
        {
            await store.SetExitCodeAsync(inferenceId, predicted.ExitCode, cancellationToken);
            throw new InvalidOperationException(predicted.Error);
        }

        workerClock.Start();
        var predictionFile = Path.Combine(output, NiftiCaseFiles.LabelFileName(caseRecord.CaseKey));
        if (!File.Exists(predictionFile))
        {
            throw new InvalidOperationException($"nnUNetv2_predict ended successfully but wrote no {Path.GetFileName(predictionFile)} in {output}");
        }
        var labelMap = NiftiLabelMap.OnGrid(NiftiReader.ReadFile(predictionFile), image.Grid,
            string.Create(CultureInfo.InvariantCulture, $"The prediction of model {model.Id}"));
        StoredSegmentation? stored = null;
        if (CaseSegmentations.HasLabels(labelMap))
        {
            // The UIDs derive from the inference, so an attempt that stored the SEG but could not record it stores the same instance again.
            stored = await segmentations.StoreAsync(image, labelMap, workflow, SegmentationOptions(workflow, model),
                string.Create(CultureInfo.InvariantCulture, $"orthancseg-inference/{inference.Id}/{inference.CreatedAt.UtcTicks}"), cancellationToken);
        }
        workerClock.Stop();
        var result = new InferenceResult(
            stored is null ? null : CaseSegmentations.Label(caseRecord.Id, stored, "model", LabelStore.Proposed, null),
            workerClock.ElapsedMilliseconds, (long)predicted.Elapsed.TotalMilliseconds);
        await store.SucceedAsync(inferenceId, attempt, result, predicted.ExitCode, cancellationToken);
        RemoveScratch(inferenceId);
        if (stored is null)
        {
            LogNoFindings(logger, inferenceId, caseRecord.CaseKey, model.Id);
        }
        else
        {
            LogStored(logger, inferenceId, caseRecord.CaseKey, model.Id, stored.SopInstanceUid, stored.OrthancInstanceId, result.WorkerMs, result.PredictorMs);
        }
    }

    /// <summary>The job ended cancelled or dead: the predictor stops, its resources go back, the inference says why, its scratch goes.</summary>
    public async Task EndAsync(long inferenceId, JobEnding ending, CancellationToken cancellationToken)
    {
        var inference = await store.GetAsync(inferenceId, cancellationToken);
        await backend.StopAsync(inference, cancellationToken);
        await store.EndAsync(inferenceId, ending.Cancelled, ending.Error, cancellationToken);
        RemoveScratch(inferenceId);
    }

    /// <summary>
    /// AUTOMATIC with the model as the algorithm; the series description says which model of which workflow made it, the content description
    /// how nnU-Net ran it (configuration, trainer, plans, folds).
    /// </summary>
    internal static SegmentationWriterOptions SegmentationOptions(Workflow workflow, ModelRecord model) => new(
        SegmentAlgorithmType.Automatic,
        AlgorithmName: string.Create(CultureInfo.InvariantCulture, $"OrthancSeg model {model.Id}"),
        SeriesDescription: CaseSegmentations.LongString(string.Create(CultureInfo.InvariantCulture, $"{workflow.Name} model {model.Id} ({model.Configuration})")),
        ContentDescription: CaseSegmentations.LongString($"nnU-Net {model.Configuration} {model.Trainer} {model.Plans} folds {string.Join(',', model.Folds)}"))
    {
        AlgorithmVersion = CaseSegmentations.LongString($"nnU-Net v2 {model.Configuration} {model.Trainer} {model.Plans} folds {string.Join(',', model.Folds)}"),
    };

    private string ScratchFolder(long inferenceId) =>
        Path.Combine(_options.ResolvedScratchRoot(datasetOptions.Value.ResolvedRawRoot()), string.Create(CultureInfo.InvariantCulture, $"inference-{inferenceId}"));

    private void RemoveScratch(long inferenceId)
    {
        var folder = ScratchFolder(inferenceId);
        if (Directory.Exists(folder))
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [LoggerMessage(Level = LogLevel.Information,
        Message = "Inference {InferenceId}: case {CaseKey}'s series fetched from Orthanc, {Bytes} DICOM bytes ({Instances} instances) in {FetchMs} ms: {MegabytesPerSecond} MB/s")]
    private static partial void LogFetched(ILogger logger, long inferenceId, string caseKey, long bytes, int instances, long fetchMs, double megabytesPerSecond);

    [LoggerMessage(Level = LogLevel.Information,
        Message = "Inference {InferenceId}: model {ModelId} found nothing in case {CaseKey}; no SEG stored")]
    private static partial void LogNoFindings(ILogger logger, long inferenceId, string caseKey, long modelId);

    [LoggerMessage(Level = LogLevel.Information,
        Message = "Inference {InferenceId}: model {ModelId}'s SEG {SopInstanceUid} of case {CaseKey} stored as Orthanc instance {OrthancInstanceId} (worker {WorkerMs} ms, predictor {PredictorMs} ms)")]
    private static partial void LogStored(ILogger logger, long inferenceId, string caseKey, long modelId, string sopInstanceUid, string orthancInstanceId,
        long workerMs, long predictorMs);
}
