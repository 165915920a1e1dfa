using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Training;
using OrthancSeg.Worker.Training.Backends;
using OrthancSeg.Worker.Training.Local;

namespace OrthancSeg.Worker.Inference;

/// <summary>How a predictor run ended: succeeded, or the reason it did not (exit code and the end of its log).</summary>
internal sealed record PredictorResult(bool Succeeded, int? ExitCode, string? Error, TimeSpan Elapsed);

/// <summary>
/// Runs nnUNetv2_predict for an inference on the training backends through the same <see cref="BackendRunner"/> as training steps: locally
/// a prediction waits until its request fits the GPU/CPU/memory ledger, gets its own CUDA_VISIBLE_DEVICES, runs under its time limit and
/// survives the worker; on Slurm it is a batch job. What is the inference's own: its resources (<see cref="InferenceOptions"/>), its names,
/// and its placement and backend id recorded on its row, so an attempt after a worker restart re-attaches instead of starting it again.
/// </summary>
internal sealed class PredictorBackend(InferenceStore store, BackendRunner runner, IOptions<InferenceOptions> options)
{
    private readonly InferenceOptions _options = options.Value;

    /// <summary>
    /// Whether an earlier attempt started this inference's predictor in <see cref="InferenceRecord.RunDirectory"/> and it can still be followed
    /// (a Slurm job, or a local process running or ended with its exit file); a local one lost with its worker runs again in a new folder.
    /// </summary>
    public static bool WasStarted(InferenceRecord inference) =>
        inference.RunDirectory is { } directory && (inference.Backend == "slurm" ? inference.BackendJobId is not null : LocalProcessLauncher.HoldsFollowableJob(directory));

    public async Task<PredictorResult> RunAsync(InferenceRecord inference, NnUnetCommand command, string directory, CancellationToken cancellationToken)
    {
        // Whole seconds are all an exit file knows; this attempt's own clock measures the (often sub-second) predictions it followed.
        var clock = Stopwatch.StartNew();
        var result = await runner.RunAsync(new BackendRun
        {
            Backend = inference.Backend,
            Command = command,
            Directory = directory,
            WorkingDirectory = directory,
            Resources = Resources(),
            LedgerKey = LedgerKey(inference),
            GpusGiven = inference.GpusGiven,
            // A new name per attempt: an attempt that failed leaves its job behind, and the next one submits afresh in its own folder.
            SlurmJobName = string.Create(CultureInfo.InvariantCulture,
                $"orthancseg-inference{inference.Id}-{inference.CreatedAt.ToUnixTimeMilliseconds()}-a{inference.Attempts}"),
            SlurmComment = string.Create(CultureInfo.InvariantCulture, $"orthancseg inference {inference.Id} of case {inference.CaseKey}"),
            SlurmJobId = inference.RunDirectory == directory ? inference.BackendJobId : null,
            SlurmPollInterval = _options.SlurmPollInterval,
            Subject = "nnUNetv2_predict",
        }, new InferenceRunRecord(store, inference.Id), cancellationToken);
        return new PredictorResult(result.Outcome == BackendOutcome.Succeeded, result.ExitCode, result.Error, clock.Elapsed);
    }

    /// <summary>Stops the inference's predictor (process tree, or scancel) and gives its local resources back: its job was cancelled or gave up.</summary>
    public Task StopAsync(InferenceRecord inference, CancellationToken cancellationToken) =>
        runner.StopAsync(inference.Backend, inference.RunDirectory, inference.BackendJobId, _options.TimeLimit, LedgerKey(inference), cancellationToken);

    /// <summary>Whether the backend could ever run a prediction with the configured resources; the reason when not.</summary>
    public async Task<string?> WhyItCanNeverRunAsync(string backend, CancellationToken cancellationToken) =>
        await runner.WhyItCanNeverRunAsync(backend, Resources(), cancellationToken) is { } reason
            ? backend == "slurm"
                ? $"Slurm can never run a prediction with {InferenceOptions.Section}'s resources: {reason}"
                : $"the local backend can never run a prediction with {InferenceOptions.Section}'s resources: {reason}"
            : null;

    private BackendResources Resources() =>
        new(_options.Gpus, _options.Cpus, _options.MemoryMiB, _options.TimeLimit, _options.Partition.Length == 0 ? null : _options.Partition);

    private static string LedgerKey(InferenceRecord inference) => string.Create(CultureInfo.InvariantCulture, $"inference-{inference.Id}");

    /// <summary>The inference's row follows its predictor: folder, host and GPUs before it starts, then its process group or Slurm job.</summary>
    private sealed class InferenceRunRecord(InferenceStore store, long inferenceId) : IBackendRunRecord
    {
        public Task PlacedAsync(string directory, string logPath, string? host, string gpus, CancellationToken cancellationToken) =>
            store.SetPlacementAsync(inferenceId, directory, host, gpus, cancellationToken);

        public Task StartedAsync(string backendJobId, bool running, string? host, CancellationToken cancellationToken) =>
            store.SetBackendJobAsync(inferenceId, backendJobId, host, cancellationToken);
    }
}
