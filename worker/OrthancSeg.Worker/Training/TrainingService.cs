using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Options;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Worker.Datasets;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Grpc;
using OrthancSeg.Worker.Jobs;
using OrthancSeg.Worker.Training.Local;
using OrthancSeg.Worker.Training.Slurm;
using OrthancSeg.Worker.Workflows;

namespace OrthancSeg.Worker.Training;

/// <summary>orthancseg.v1.TrainingService: starts runs (checking at once that they can ever run), shows, follows and cancels them.</summary>
internal sealed partial class TrainingService(
    TrainingStore store,
    WorkflowStore workflows,
    SnapshotStore snapshots,
    JobQueue queue,
    JobRunner jobs,
    NnUnetCommands commands,
    IOptions<NnUnetOptions> nnunetOptions,
    IOptions<TrainingOptions> options,
    IOptions<LocalOptions> localOptions,
    LocalResources localResources,
    SlurmClient slurm) : Contracts.V1.TrainingService.TrainingServiceBase
{
    private const int DefaultGpus = 1;
    private const int DefaultCpus = 8;
    private const long DefaultMemoryMiB = 32_768;
    private static readonly TimeSpan DefaultTimeLimit = TimeSpan.FromHours(24);
    private static readonly TimeSpan WatchPoll = TimeSpan.FromSeconds(1);

    public override async Task<StartTrainingResponse> StartTraining(StartTrainingRequest request, ServerCallContext context)
    {
        var ct = context.CancellationToken;
        if (request.Workflow.Length == 0)
        {
            throw new InvalidArgumentException("workflow", "is required");
        }
        var workflow = await workflows.GetAsync(request.Workflow, ct);
        var snapshot = await SnapshotAsync(workflow, request.SnapshotId, ct);

        var problems = new List<FieldProblem>();
        var configuration = Or(request.Configuration, "3d_fullres");
        if (!NnUnetCommands.Configurations.Contains(configuration))
        {
            problems.Add(new("configuration", $"'{configuration}' is not an nnU-Net configuration ({string.Join(", ", NnUnetCommands.Configurations)})"));
        }
        var trainer = Or(request.Trainer, "nnUNetTrainer");
        var plans = Or(request.Plans, "nnUNetPlans");
        var planner = request.Planner.Length == 0 ? null : request.Planner;
        foreach (var (field, value) in new[] { ("trainer", trainer), ("plans", plans), ("planner", planner ?? "x") })
        {
            if (!Identifier().IsMatch(value))
            {
                problems.Add(new(field, $"'{value}' is not an nnU-Net class or plans name (letters, digits and _)"));
            }
        }
        List<string> folds = request.Folds.Count == 0 ? ["0", "1", "2", "3", "4"] : [.. request.Folds];
        foreach (var fold in folds.Where(f => f is not ("0" or "1" or "2" or "3" or "4" or "all")))
        {
            problems.Add(new("folds", $"'{fold}' is out of range: folds are 0..4 or 'all'"));
        }
        if (folds.Distinct(StringComparer.Ordinal).Count() != folds.Count)
        {
            problems.Add(new("folds", "a fold is named twice"));
        }
        var backend = request.Backend switch
        {
            TrainingBackend.Unspecified => options.Value.DefaultBackend,
            TrainingBackend.Local => "local",
            TrainingBackend.Slurm => "slurm",
            _ => null,
        };
        if (backend is null)
        {
            problems.Add(new("backend", $"{request.Backend} is not a backend"));
        }
        var resources = request.Resources ?? new TrainingResources();
        if (resources.Gpus < 0 || resources.Cpus < 0 || resources.MemoryMib < 0 || resources.TimeLimitSeconds < 0)
        {
            problems.Add(new("resources", "GPUs, CPUs, memory and time limit cannot be negative"));
        }
        if (resources.Partition.Length > 0 && !Identifier().IsMatch(resources.Partition.Replace("-", "_", StringComparison.Ordinal)))
        {
            problems.Add(new("resources.partition", $"'{resources.Partition}' is not a partition name"));
        }
        if (problems.Count > 0)
        {
            throw new InvalidArgumentException(problems);
        }
        if (folds.Any(f => f != "all") && snapshot.IncludedCount < CrossValidationSplits.FoldCount)
        {
            throw new FailedPreconditionException($"Snapshot {snapshot.Id} has {snapshot.IncludedCount} case(s); {CrossValidationSplits.FoldCount}-fold "
                + "cross-validation needs at least 5. Train fold 'all' instead (--folds all)");
        }
        var model = new NnUnetModelSpec(workflow.DatasetId, workflow.DatasetName, configuration, trainer, plans);
        try
        {
            commands.PlanAndPreprocess(model, nnunetOptions.Value.Paths(Path.GetDirectoryName(snapshot.DatasetPath)!), 1, planner);
        }
        catch (ArgumentException e)
        {
            throw new InvalidArgumentException("planner", e.Message);
        }

        var gpus = resources.HasGpus ? resources.Gpus : DefaultGpus;
        var cpus = resources.Cpus;
        var memory = resources.MemoryMib;
        var time = resources.TimeLimitSeconds > 0 ? resources.TimeLimitSeconds : (long)DefaultTimeLimit.TotalSeconds;
        var partition = resources.Partition.Length == 0 ? null : resources.Partition;
        if (backend == "local")
        {
            // The defaults shrink to a smaller machine; an explicit request that cannot fit is refused.
            var ledger = await localResources.LedgerAsync(ct);
            cpus = cpus > 0 ? cpus : Math.Min(DefaultCpus, ledger.Capacity.Cpus);
            memory = memory > 0 ? memory : Math.Min(DefaultMemoryMiB, ledger.Capacity.MemoryMiB);
            var reason = ledger.WhyItCanNeverFit(new LocalRequest(gpus, cpus, memory)) ?? ledger.WhyItCanNeverFit(new LocalRequest(0, cpus, memory));
            if (reason is not null)
            {
                throw new FailedPreconditionException($"The local backend can never run this request: {reason}");
            }
        }
        else
        {
            cpus = cpus > 0 ? cpus : DefaultCpus;
            memory = memory > 0 ? memory : DefaultMemoryMiB;
            try
            {
                await slurm.EnsureCanEverRunAsync(new SlurmResources(gpus, cpus, memory, TimeSpan.FromSeconds(time), partition), ct);
                await slurm.EnsureCanEverRunAsync(new SlurmResources(0, cpus, memory, TimeSpan.FromSeconds(time), partition), ct);
            }
            catch (SlurmRequestRefusedException e)
            {
                throw new FailedPreconditionException($"Slurm can never run this request: {e.Message}");
            }
        }

        var runId = await store.CreateRunAsync(new TrainingRunSpec(workflow.Id, snapshot.Id, configuration, trainer, plans, planner, folds, backend!,
            gpus, cpus, memory, time, partition), ct);
        var preprocess = (await store.StepsAsync(runId, ct)).Single(s => s.Kind == TrainingStore.Preprocess);
        var job = await PreprocessHandler.EnqueueAsync(queue, runId, preprocess.Id, options.Value.MaxAttempts, ct);
        await store.SetStepJobAsync(preprocess.Id, job.Id.Value, ct);
        return new StartTrainingResponse { Run = await RunAsync(runId, ct) };
    }

    public override async Task<GetTrainingRunResponse> GetTrainingRun(GetTrainingRunRequest request, ServerCallContext context) =>
        new() { Run = await RunAsync(Id(request.Id), context.CancellationToken) };

    public override async Task<ListTrainingRunsResponse> ListTrainingRuns(ListTrainingRunsRequest request, ServerCallContext context)
    {
        var size = Paging.PageSize(request.PageSize, 50, 500);
        var page = await store.ListRunsAsync(request.Workflow.Length == 0 ? null : request.Workflow, Paging.IdFromToken(request.PageToken), size + 1,
            context.CancellationToken);
        var response = new ListTrainingRunsResponse();
        response.Runs.AddRange(page.Take(size).Select(r => ToContract(r, [])));
        if (page.Count > size)
        {
            response.NextPageToken = Paging.Token(page[size - 1].Id);
        }
        return response;
    }

    public override async Task<CancelTrainingRunResponse> CancelTrainingRun(CancelTrainingRunRequest request, ServerCallContext context)
    {
        var ct = context.CancellationToken;
        var id = Id(request.Id);
        foreach (var job in await store.CancelRunAsync(id, ct))
        {
            try
            {
                await queue.RequestCancelAsync(new JobId(job), ct);
                jobs.CancelLocal(new JobId(job));
            }
            catch (FailedPreconditionException)
            {
                // It ended meanwhile.
            }
        }
        // Waiting steps end at the next claim, running ones at their next heartbeat and then their process tree's grace period.
        var deadline = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(10) + localOptions.Value.KillGracePeriod;
        var steps = await store.StepsAsync(id, ct);
        while (steps.Any(s => !s.IsFinished) && DateTimeOffset.UtcNow < deadline)
        {
            await store.WaitForChangeAsync(TimeSpan.FromMilliseconds(200), ct);
            steps = await store.StepsAsync(id, ct);
        }
        return new CancelTrainingRunResponse { Run = ToContract(await store.GetRunAsync(id, ct), steps) };
    }

    public override async Task WatchTrainingRun(WatchTrainingRunRequest request, IServerStreamWriter<WatchTrainingRunResponse> responseStream,
        ServerCallContext context)
    {
        var ct = context.CancellationToken;
        var id = Id(request.Id);
        TrainingRun? sent = null;
        while (true)
        {
            var run = await RunAsync(id, ct);
            if (!run.Equals(sent))
            {
                await responseStream.WriteAsync(new WatchTrainingRunResponse { Run = run }, ct);
                sent = run;
            }
            // A run ends before its last steps do (a cancel, a failed fold stopping the others): follow it until they have.
            if (run.State is not (TrainingState.Queued or TrainingState.Running) && run.Steps.All(s => s.State is not (TrainingState.Queued or TrainingState.Running)))
            {
                return;
            }
            await store.WaitForChangeAsync(WatchPoll, ct);
        }
    }

    public override async Task<GetTrainingLogsResponse> GetTrainingLogs(GetTrainingLogsRequest request, ServerCallContext context)
    {
        var ct = context.CancellationToken;
        var id = Id(request.Id);
        var steps = await store.StepsAsync(id, ct);
        if (steps.Count == 0)
        {
            await store.GetRunAsync(id, ct);
        }
        var name = request.Step.Length == 0 ? TrainingStore.Preprocess : request.Step;
        var step = steps.FirstOrDefault(s => (s.Kind == TrainingStore.Preprocess && name == TrainingStore.Preprocess) || (s.Kind == TrainingStore.FoldStep && s.Fold == name))
            ?? throw new NotFoundException($"Training run {id} has no step '{name}' (steps: {string.Join(", ", steps.Select(s => s.Kind == TrainingStore.Preprocess ? s.Kind : s.Fold))})");
        if (request.Offset < 0 || request.TailLines < 0)
        {
            throw new InvalidArgumentException("offset", "offset and tail_lines cannot be negative");
        }
        var response = new GetTrainingLogsResponse { State = State(step.State), NextOffset = request.Offset };
        if (step.LogPath is null || !File.Exists(step.LogPath))
        {
            return response;
        }
        await using var log = new FileStream(step.LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var length = log.Length;
        if (request.Offset == 0)
        {
            // The tail: read the last 1 MiB at most and keep its last lines.
            var start = Math.Max(0, length - (1 << 20));
            log.Seek(start, SeekOrigin.Begin);
            var (text, read) = await ReadAsync(log, length - start, ct);
            var lines = text.Split('\n');
            var tail = Math.Clamp(request.TailLines == 0 ? 100 : request.TailLines, 1, 10_000);
            response.Text = string.Join('\n', lines.Skip(Math.Max(0, lines.Length - tail - 1)));
            response.NextOffset = start + read;
        }
        else if (request.Offset < length)
        {
            log.Seek(request.Offset, SeekOrigin.Begin);
            var (text, read) = await ReadAsync(log, Math.Min(length - request.Offset, 1 << 20), ct);
            response.Text = text;
            response.NextOffset = request.Offset + read;
        }
        return response;
    }

    private async Task<SnapshotRecord> SnapshotAsync(Workflows.Workflow workflow, long snapshotId, CancellationToken ct)
    {
        if (snapshotId < 0)
        {
            throw new InvalidArgumentException("snapshot_id", $"{snapshotId} is not a snapshot number");
        }
        if (snapshotId == 0)
        {
            return (await snapshots.ListAsync(workflow.Name, null, 1000, ct)).FirstOrDefault(s => s.State == SnapshotStore.Succeeded)
                ?? throw new FailedPreconditionException($"Workflow {workflow.Name} has no succeeded snapshot to train on; export one first (snapshots export)");
        }
        var snapshot = await snapshots.GetAsync(snapshotId, ct);
        if (snapshot.WorkflowId != workflow.Id)
        {
            throw new InvalidArgumentException("snapshot_id", $"snapshot {snapshotId} belongs to workflow {snapshot.Workflow}, not {workflow.Name}");
        }
        return snapshot.State == SnapshotStore.Succeeded ? snapshot
            : throw new FailedPreconditionException($"Snapshot {snapshotId} is {snapshot.State}, not succeeded: only a verified, finished snapshot can be trained on"
                + (snapshot.Error is { } error ? $" ({error})" : ""));
    }

    private async Task<TrainingRun> RunAsync(long id, CancellationToken ct)
    {
        var run = await store.GetRunAsync(id, ct);
        return ToContract(run, await store.StepsAsync(id, ct));
    }

    /// <summary>Reads up to <paramref name="count"/> bytes, stopping before a UTF-8 character cut at the end (it is read next time).</summary>
    private static async Task<(string Text, int Read)> ReadAsync(Stream stream, long count, CancellationToken ct)
    {
        var buffer = new byte[count];
        var read = await stream.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, ct);
        var whole = read;
        // Back off over continuation bytes (10xxxxxx) to the lead byte; drop it if its character is not complete.
        var lead = read - 1;
        while (lead >= 0 && lead > read - 4 && (buffer[lead] & 0xC0) == 0x80)
        {
            lead--;
        }
        if (lead >= 0 && buffer[lead] >= 0xC0)
        {
            var size = buffer[lead] >= 0xF0 ? 4 : buffer[lead] >= 0xE0 ? 3 : 2;
            if (lead + size > read)
            {
                whole = lead;
            }
        }
        return (Encoding.UTF8.GetString(buffer, 0, whole), whole);
    }

    private static long Id(long id) => id > 0 ? id : throw new InvalidArgumentException("id", $"{id} is not a training run number");

    private static string Or(string value, string fallback) => value.Length == 0 ? fallback : value;

    internal static TrainingState State(string state) => state switch
    {
        TrainingStore.Queued => TrainingState.Queued,
        TrainingStore.Running => TrainingState.Running,
        TrainingStore.Succeeded => TrainingState.Succeeded,
        TrainingStore.Failed => TrainingState.Failed,
        TrainingStore.Cancelled => TrainingState.Cancelled,
        _ => TrainingState.Unspecified,
    };

    internal static TrainingRun ToContract(TrainingRunRecord run, IReadOnlyList<TrainingStepRecord> steps)
    {
        var result = new TrainingRun
        {
            Id = run.Id,
            Workflow = run.Workflow,
            SnapshotId = run.SnapshotId,
            Configuration = run.Configuration,
            Trainer = run.Trainer,
            Plans = run.Plans,
            Planner = run.Planner ?? "",
            Folds = { run.Folds },
            Backend = run.Backend == "slurm" ? TrainingBackend.Slurm : TrainingBackend.Local,
            Resources = new TrainingResources
            {
                Gpus = run.Gpus,
                Cpus = run.Cpus,
                MemoryMib = run.MemoryMiB,
                TimeLimitSeconds = run.TimeLimitSeconds,
                Partition = run.Partition ?? "",
            },
            State = State(run.State),
            Error = run.Error ?? "",
            ModelId = run.ModelId ?? 0,
            CreateTime = Timestamp.FromDateTimeOffset(run.CreatedAt),
        };
        if (run.StartedAt is { } started)
        {
            result.StartTime = Timestamp.FromDateTimeOffset(started);
        }
        if (run.FinishedAt is { } finished)
        {
            result.FinishTime = Timestamp.FromDateTimeOffset(finished);
        }
        result.Steps.AddRange(steps.Select(s =>
        {
            var step = new TrainingStep
            {
                Kind = s.Kind,
                Fold = s.Fold,
                State = State(s.State),
                JobId = s.JobId ?? 0,
                BackendJobId = s.BackendJobId ?? "",
                Host = s.Host ?? "",
                Gpus = s.GpusGiven ?? "",
                LogPath = s.LogPath ?? "",
                Error = s.Error ?? "",
            };
            if (s.ExitCode is { } code)
            {
                step.ExitCode = code;
            }
            if (s.StartedAt is { } stepStarted)
            {
                step.StartTime = Timestamp.FromDateTimeOffset(stepStarted);
            }
            if (s.FinishedAt is { } stepFinished)
            {
                step.FinishTime = Timestamp.FromDateTimeOffset(stepFinished);
            }
            return step;
        }));
        return result;
    }

    [GeneratedRegex("^[A-Za-z0-9_]{1,100}$", RegexOptions.CultureInvariant)]
    private static partial Regex Identifier();
}
