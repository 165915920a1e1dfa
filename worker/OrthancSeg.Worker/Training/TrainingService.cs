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
internal sealed class TrainingService(
    TrainingStore store,
    TrainingStarter starter,
    RetrainStore retrains,
    JobQueue queue,
    JobRunner jobs,
    IOptions<LocalOptions> localOptions) : Contracts.V1.TrainingService.TrainingServiceBase
{
    private static readonly TimeSpan WatchPoll = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan LogPoll = TimeSpan.FromMilliseconds(500);

    public override async Task<StartTrainingResponse> StartTraining(StartTrainingRequest request, ServerCallContext context) =>
        new() { Run = await RunAsync(await starter.StartAsync(request, null, context.CancellationToken), context.CancellationToken) };

    public override async Task<GetTrainingRunResponse> GetTrainingRun(GetTrainingRunRequest request, ServerCallContext context) =>
        new() { Run = await RunAsync(Id(request.Id), context.CancellationToken) };

    public override async Task<ListTrainingRunsResponse> ListTrainingRuns(ListTrainingRunsRequest request, ServerCallContext context)
    {
        var size = Paging.PageSize(request.PageSize, 50, 500);
        var page = await store.ListRunsAsync(request.Workflow.Length == 0 ? null : request.Workflow, Paging.IdFromToken(request), size + 1,
            context.CancellationToken);
        var response = new ListTrainingRunsResponse();
        response.Runs.AddRange(page.Take(size).Select(r => ToContract(r, [])));
        if (page.Count > size)
        {
            response.NextPageToken = Paging.Token(request, page[size - 1].Id);
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
        var followers = new Dictionary<long, LogFollower>();
        var follow = request.Epochs || request.LogLines;
        TrainingRun? sent = null;
        while (true)
        {
            var record = await store.GetRunAsync(id, ct);
            var steps = await store.StepsAsync(id, ct);
            var run = await DescribeAsync(record, steps, ct);
            if (!run.Equals(sent))
            {
                await responseStream.WriteAsync(new WatchTrainingRunResponse { Run = run }, ct);
                sent = run;
            }
            if (follow)
            {
                // Read after the state: once a step reads as ended, its log is complete up to what this reads.
                var events = new WatchTrainingRunResponse();
                foreach (var step in steps.Where(s => s.LogPath is not null))
                {
                    if (!followers.TryGetValue(step.Id, out var follower) || follower.Path != step.LogPath)
                    {
                        // A local step that ran again has a new folder and log: follow that one from its start.
                        follower = followers[step.Id] = new LogFollower(step.LogPath!, StepLabel(step));
                    }
                    await follower.ReadAsync(request.Epochs ? events.Epochs : null, request.LogLines ? events.LogLines : null, ct);
                }
                if (events.Epochs.Count > 0 || events.LogLines.Count > 0)
                {
                    await responseStream.WriteAsync(events, ct);
                }
            }
            // A run ends before its last steps do (a cancel, a failed fold stopping the others): follow it until they have.
            if (run.State is not (TrainingState.Queued or TrainingState.Running) && run.Steps.All(s => s.State is not (TrainingState.Queued or TrainingState.Running)))
            {
                return;
            }
            await store.WaitForChangeAsync(follow ? LogPoll : WatchPoll, ct);
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

    private async Task<TrainingRun> RunAsync(long id, CancellationToken ct) =>
        await DescribeAsync(await store.GetRunAsync(id, ct), await store.StepsAsync(id, ct), ct);

    /// <summary>The run with its steps, each step's latest epoch read from the end of its log, and the retrain policy's comparison.</summary>
    private async Task<TrainingRun> DescribeAsync(TrainingRunRecord record, IReadOnlyList<TrainingStepRecord> steps, CancellationToken ct)
    {
        var run = ToContract(record, steps);
        for (var i = 0; i < steps.Count; i++)
        {
            if (steps[i].Kind == TrainingStore.FoldStep && steps[i].LogPath is { } log && await LatestEpochAsync(log, steps[i].Fold, ct) is { } epoch)
            {
                run.Steps[i].LatestEpoch = epoch;
            }
        }
        if (record.TriggerId is not null && await retrains.ComparisonOfRunAsync(record.Id, ct) is { } comparison)
        {
            run.Comparison = comparison;
        }
        return run;
    }

    /// <summary>The last epoch in the final 256 KiB of a log (a few hundred epochs of nnU-Net's output).</summary>
    private static async Task<TrainingEpoch?> LatestEpochAsync(string path, string fold, CancellationToken ct)
    {
        if (!File.Exists(path))
        {
            return null;
        }
        await using var log = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var start = Math.Max(0, log.Length - (256 << 10));
        log.Seek(start, SeekOrigin.Begin);
        var (text, _) = await ReadAsync(log, log.Length - start, ct);
        return NnUnetEpochParser.Latest(fold, text.Split('\n'));
    }

    private static string StepLabel(TrainingStepRecord step) => step.Kind == TrainingStore.Preprocess ? TrainingStore.Preprocess : step.Fold;

    /// <summary>Follows one step's log for WatchTrainingRun: the bytes read so far, the line not yet ended, the epoch being read.</summary>
    private sealed class LogFollower(string path, string step)
    {
        private readonly NnUnetEpochParser _parser = new(step);
        private long _offset;
        private string _partial = "";

        public string Path => path;

        public async Task ReadAsync(Google.Protobuf.Collections.RepeatedField<TrainingEpoch>? epochs, Google.Protobuf.Collections.RepeatedField<TrainingLogLine>? lines,
            CancellationToken ct)
        {
            if (!File.Exists(path))
            {
                return;
            }
            await using var log = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            while (_offset < log.Length)
            {
                log.Seek(_offset, SeekOrigin.Begin);
                var (text, read) = await TrainingService.ReadAsync(log, Math.Min(log.Length - _offset, 1 << 20), ct);
                if (read == 0)
                {
                    return;
                }
                _offset += read;
                var parts = (_partial + text).Split('\n');
                _partial = parts[^1];
                foreach (var line in parts[..^1].Select(l => l.TrimEnd('\r')))
                {
                    lines?.Add(new TrainingLogLine { Step = step, Text = line });
                    if (_parser.Feed(line) is { } epoch)
                    {
                        epochs?.Add(epoch);
                    }
                }
            }
        }
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
            Trigger = run.TriggerId is null ? "manual" : "retrain-policy",
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
}
