using System.CommandLine;
using System.Globalization;
using System.Text.RegularExpressions;
using Grpc.Core;
using OrthancSeg.Cli.Connection;
using OrthancSeg.Cli.Output;
using OrthancSeg.Contracts.V1;

namespace OrthancSeg.Cli.Commands;

/// <summary>`orthancseg training start|list|show|logs|watch|cancel`: nnU-Net training runs of a workflow's snapshots.</summary>
internal static partial class TrainingCommand
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    public static Command Create()
    {
        var command = new Command("training", "Train nnU-Net on a snapshot (this machine's GPUs or Slurm): start, list, show, logs, watch, cancel");
        command.Subcommands.Add(StartCommand());
        command.Subcommands.Add(ListCommand());
        command.Subcommands.Add(ShowCommand());
        command.Subcommands.Add(LogsCommand());
        command.Subcommands.Add(WatchCommand());
        command.Subcommands.Add(CancelCommand());
        return command.WithExamples(
            "orthancseg training start --workflow liver-ct --wait",
            "orthancseg training watch 1");
    }

    private static Command StartCommand()
    {
        var workflow = new Option<string>("--workflow") { Description = "The workflow to train", Required = true };
        var snapshot = new Option<long>("--snapshot") { Description = "The snapshot to train on (default: the workflow's newest succeeded one)" };
        var flags = new TrainingFlags();
        var wait = new Option<bool>("--wait") { Description = "Follow the run until it ends (exit code 1 unless it succeeded)" };
        var command = new Command("start",
            "Start a training run: preprocessing, then one job per fold; a model is registered when every fold succeeds. Flags left out take the workflow's defaults")
        {
            workflow, snapshot, wait,
        };
        flags.AddTo(command);
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var request = new StartTrainingRequest { Workflow = parseResult.GetValue(workflow)!, SnapshotId = parseResult.GetValue(snapshot) };
            flags.Fill(parseResult, request);
            var run = (await worker.Training.StartTrainingAsync(request, deadline: DateTime.UtcNow + Deadline, cancellationToken: ct)).Run;
            if (!parseResult.GetValue(wait))
            {
                if (output.Json)
                {
                    output.WriteJson(ToJson(run));
                }
                else
                {
                    output.Line(string.Create(CultureInfo.InvariantCulture,
                        $"Training run {run.Id} of {run.Workflow} (snapshot {run.SnapshotId}, folds {string.Join(',', run.Folds)}) queued on the {Formatting.Word(run.Backend)} backend. Follow it with: orthancseg training show {run.Id}"));
                }
                return ExitCodes.Ok;
            }
            using (var watch = worker.Training.WatchTrainingRun(new WatchTrainingRunRequest { Id = run.Id }, cancellationToken: ct))
            {
                await foreach (var update in watch.ResponseStream.ReadAllAsync(ct))
                {
                    run = update.Run;
                    Progress(output, run);
                }
            }
            output.EndProgress();
            Print(output, run);
            return run.State == TrainingState.Succeeded ? ExitCodes.Ok : ExitCodes.Unhealthy;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg training start --workflow liver-ct --folds 0,1,2,3,4 --gpus 1 --wait",
            "orthancseg training start --workflow liver-ct --snapshot 3 --backend slurm --partition gpu --time 2-00:00:00",
            "orthancseg training start --workflow liver-ct --configuration 2d --folds all");
    }

    private static Command ListCommand()
    {
        var workflow = new Option<string?>("--workflow") { Description = "Only runs of this workflow" };
        var command = new Command("list", "List training runs, newest first") { workflow };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var request = new ListTrainingRunsRequest { Workflow = parseResult.GetValue(workflow) ?? "", PageSize = 500 };
            var all = await Paging.AllAsync(async token =>
            {
                request.PageToken = token;
                var page = await worker.Training.ListTrainingRunsAsync(request, deadline: DateTime.UtcNow + Deadline, cancellationToken: ct);
                return (page.Runs.AsEnumerable(), page.NextPageToken);
            });
            if (output.Json)
            {
                output.WriteJson(all.Select(ToJson));
                return ExitCodes.Ok;
            }
            output.Table(["RUN", "WORKFLOW", "SNAPSHOT", "STATE", "BACKEND", "CONFIGURATION", "FOLDS", "GPUS", "MODEL", "CREATED", "ERROR"],
                all.Select(r => (IReadOnlyList<string>)[
                    Formatting.Number(r.Id), r.Workflow, Formatting.Number(r.SnapshotId), Formatting.Word(r.State), Formatting.Word(r.Backend), r.Configuration,
                    string.Join(',', r.Folds), Formatting.Number(r.Resources.Gpus), r.ModelId == 0 ? "" : Formatting.Number(r.ModelId), Formatting.Time(r.CreateTime),
                    OneLine(r.Error)]));
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg training list",
            "orthancseg training list --workflow liver-ct --json");
    }

    private static Command ShowCommand()
    {
        var id = new Argument<long>("run") { Description = "The training run number" };
        var command = new Command("show", "Show a training run: its request, state and every step (job, process or Slurm job, GPUs, exit code, log)") { id };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            Print(output, (await worker.Training.GetTrainingRunAsync(new GetTrainingRunRequest { Id = parseResult.GetValue(id) },
                deadline: DateTime.UtcNow + Deadline, cancellationToken: ct)).Run);
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg training show 1");
    }

    private static Command LogsCommand()
    {
        var id = new Argument<long>("run") { Description = "The training run number" };
        var step = new Option<string>("--step") { Description = "preprocess, or a fold (0..4, all)", DefaultValueFactory = _ => "preprocess" };
        var lines = new Option<int>("--lines") { Description = "How many of the last lines to show", DefaultValueFactory = _ => 100 };
        var follow = new Option<bool>("--follow") { Description = "Keep printing what the step writes until it ends" };
        var command = new Command("logs", "Print the end of a step's log (nnU-Net's output: epochs, losses, pseudo-Dice)") { id, step, lines, follow };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var request = new GetTrainingLogsRequest { Id = parseResult.GetValue(id), Step = parseResult.GetValue(step)!, TailLines = parseResult.GetValue(lines) };
            while (true)
            {
                var response = await worker.Training.GetTrainingLogsAsync(request, deadline: DateTime.UtcNow + Deadline, cancellationToken: ct);
                if (output.Json)
                {
                    // One object per read (with --follow, one per second that brought new text), so a script can resume from nextOffset.
                    if (response.Text.Length > 0 || request.Offset == 0)
                    {
                        output.WriteJson(new { run = request.Id, step = request.Step, offset = request.Offset, text = response.Text, nextOffset = response.NextOffset,
                            state = Formatting.Word(response.State) });
                    }
                }
                else if (response.Text.Length > 0)
                {
                    Console.Out.Write(response.Text);
                }
                var ended = response.State is not (TrainingState.Queued or TrainingState.Running);
                // The state is read before the log, so once it says ended, what follows the returned text is the rest of the log.
                if (!parseResult.GetValue(follow) || (ended && (request.Offset == 0 || response.Text.Length == 0)))
                {
                    return ExitCodes.Ok;
                }
                request.Offset = response.NextOffset;
                await Task.Delay(TimeSpan.FromSeconds(1), ct);
            }
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg training logs 1",
            "orthancseg training logs 1 --step 0 --lines 20",
            "orthancseg training logs 1 --step 2 --follow");
    }

    private static Command WatchCommand()
    {
        var id = new Argument<long>("run") { Description = "The training run number" };
        var logs = new Option<bool>("--logs") { Description = "Also print every line the steps write to their logs" };
        var command = new Command("watch", "Follow a run until it ends: state changes and each epoch nnU-Net finishes (losses, pseudo Dice)") { id, logs };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var request = new WatchTrainingRunRequest { Id = parseResult.GetValue(id), Epochs = true, LogLines = parseResult.GetValue(logs) };
            TrainingRun? run = null;
            var states = "";
            using var watch = worker.Training.WatchTrainingRun(request, cancellationToken: ct);
            await foreach (var update in watch.ResponseStream.ReadAllAsync(ct))
            {
                if (output.Json)
                {
                    output.WriteJson(new
                    {
                        run = update.Run is null ? null : ToJson(update.Run),
                        epochs = update.Epochs.Select(EpochJson).ToArray(),
                        logLines = update.LogLines.Select(l => new { step = l.Step, text = l.Text }).ToArray(),
                    });
                }
                else
                {
                    foreach (var line in update.LogLines)
                    {
                        output.Line($"[{(line.Step == "preprocess" ? line.Step : $"fold {line.Step}")}] {line.Text}");
                    }
                    foreach (var epoch in update.Epochs)
                    {
                        output.Line($"fold {epoch.Fold}: {TrainingFlags.Describe(epoch)}");
                    }
                    if (update.Run is { } changed
                        && $"{Formatting.Word(changed.State)}; {string.Join(", ", changed.Steps.Select(s => $"{StepName(s)} {Formatting.Word(s.State)}"))}" is var now
                        && now != states)
                    {
                        output.Line(string.Create(CultureInfo.InvariantCulture, $"run {changed.Id}: {now}"));
                        states = now;
                    }
                    if (update.Run is { } current)
                    {
                        Progress(output, current);
                    }
                }
                run = update.Run ?? run;
            }
            output.EndProgress();
            if (run is not null && !output.Json && run.Error.Length > 0)
            {
                output.Line(run.Error);
            }
            return run?.State == TrainingState.Succeeded ? ExitCodes.Ok : ExitCodes.Unhealthy;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg training watch 1",
            "orthancseg training watch 1 --logs",
            "orthancseg training watch 1 --json");
    }

    private static Command CancelCommand()
    {
        var id = new Argument<long>("run") { Description = "The training run number" };
        var command = new Command("cancel", "Cancel a training run: waiting steps never start, running ones are stopped (process tree or scancel)") { id };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var run = (await worker.Training.CancelTrainingRunAsync(new CancelTrainingRunRequest { Id = parseResult.GetValue(id) },
                deadline: DateTime.UtcNow + TimeSpan.FromMinutes(2), cancellationToken: ct)).Run;
            Print(output, run);
            return run.Steps.All(s => s.State is not (TrainingState.Queued or TrainingState.Running)) ? ExitCodes.Ok : ExitCodes.Unhealthy;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg training cancel 1");
    }

    private static void Print(ConsoleOutput output, TrainingRun r)
    {
        if (output.Json)
        {
            output.WriteJson(ToJson(r));
            return;
        }
        output.Table(["FIELD", "VALUE"], new List<IReadOnlyList<string>>
        {
            new[] { "run", Formatting.Number(r.Id) },
            new[] { "workflow", r.Workflow },
            new[] { "snapshot", Formatting.Number(r.SnapshotId) },
            new[] { "state", Formatting.Word(r.State) },
            new[] { "backend", Formatting.Word(r.Backend) },
            new[] { "model", $"{r.Configuration}, {r.Trainer}, {r.Plans}{(r.Planner.Length > 0 ? $" (planner {r.Planner})" : "")}, folds {string.Join(',', r.Folds)}" },
            new[] { "resources", string.Create(CultureInfo.InvariantCulture,
                $"{r.Resources.Gpus} GPU(s), {r.Resources.Cpus} CPU(s), {r.Resources.MemoryMib} MiB, {TimeSpan.FromSeconds(r.Resources.TimeLimitSeconds)}{(r.Resources.Partition.Length > 0 ? $", partition {r.Resources.Partition}" : "")}") },
            new[] { "registered model", r.ModelId == 0 ? "" : Formatting.Number(r.ModelId) },
            new[] { "started by", r.Trigger },
            new[] { "comparison", TrainingFlags.Describe(r.Comparison) },
            new[] { "error", r.Error },
            new[] { "created", Formatting.Time(r.CreateTime) },
            new[] { "started", Formatting.Time(r.StartTime) },
            new[] { "finished", Formatting.Time(r.FinishTime) },
        });
        output.Line();
        output.Table(["STEP", "STATE", "JOB", "BACKEND ID", "HOST", "GPUS", "EXIT", "STARTED", "FINISHED", "LOG"],
            r.Steps.Select(s => (IReadOnlyList<string>)[
                StepName(s), Formatting.Word(s.State), s.JobId == 0 ? "" : Formatting.Number(s.JobId), s.BackendJobId, s.Host, s.Gpus,
                s.HasExitCode ? Formatting.Number(s.ExitCode) : "", Formatting.Time(s.StartTime), Formatting.Time(s.FinishTime), s.LogPath]));
        if (r.Steps.Any(s => s.LatestEpoch is not null))
        {
            output.Line();
            output.Table(["STEP", "LATEST EPOCH"], r.Steps.Where(s => s.LatestEpoch is not null).Select(s => (IReadOnlyList<string>)[
                StepName(s), TrainingFlags.Describe(s.LatestEpoch)]));
        }
        foreach (var failed in r.Steps.Where(s => s.Error.Length > 0))
        {
            output.Line();
            output.Line($"{StepName(failed)}: {failed.Error}");
        }
    }

    /// <summary>A run's progress: its steps (preprocessing and one per fold) that have ended, of all.</summary>
    private static void Progress(ConsoleOutput output, TrainingRun run) =>
        output.Progress(string.Create(CultureInfo.InvariantCulture, $"run {run.Id}"), run.Steps.Count(s => s.State is not (TrainingState.Queued or TrainingState.Running)),
            run.Steps.Count, "steps", Formatting.Word(run.State));

    private static string StepName(TrainingStep s) => s.Kind == "preprocess" ? "preprocess" : $"fold {s.Fold}";

    /// <summary>"32G", "16000M", "1T" or a plain number of MiB.</summary>
    internal static long MemoryMiB(string text)
    {
        var match = MemoryPattern().Match(text.Trim());
        if (!match.Success)
        {
            throw new CliException($"--memory {text} is not a size such as 32G or 16000M", ExitCodes.Usage);
        }
        var value = long.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        return match.Groups[2].Value.ToUpperInvariant() switch
        {
            "G" => value * 1024,
            "T" => value * 1024 * 1024,
            _ => value,
        };
    }

    /// <summary>Slurm's time formats: [D-]HH:MM:SS, MM:SS, or a number of minutes.</summary>
    internal static long Seconds(string text)
    {
        var trimmed = text.Trim();
        var dash = trimmed.IndexOf('-', StringComparison.Ordinal);
        var parts = (dash < 0 ? trimmed : trimmed[(dash + 1)..]).Split(':');
        var numbers = new List<long>();
        foreach (var part in parts.Prepend(dash < 0 ? "0" : trimmed[..dash]))
        {
            if (!long.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
            {
                throw new CliException($"--time {text} is not a time limit such as 24:00:00 or 2-00:00:00", ExitCodes.Usage);
            }
            numbers.Add(number);
        }
        var days = numbers[0] * 86_400;
        return numbers.Count switch
        {
            4 => days + (numbers[1] * 3600) + (numbers[2] * 60) + numbers[3],
            3 when dash < 0 => (numbers[1] * 60) + numbers[2],
            2 when dash < 0 => numbers[1] * 60,
            _ => throw new CliException($"--time {text} is not a time limit such as 24:00:00 or 2-00:00:00", ExitCodes.Usage),
        };
    }

    private static string OneLine(string text)
    {
        var line = text.ReplaceLineEndings(" ");
        return line.Length <= 80 ? line : line[..79] + "…";
    }

    private static object ToJson(TrainingRun r) => new
    {
        id = r.Id,
        workflow = r.Workflow,
        snapshotId = r.SnapshotId,
        state = Formatting.Word(r.State),
        backend = Formatting.Word(r.Backend),
        configuration = r.Configuration,
        trainer = r.Trainer,
        plans = r.Plans,
        planner = r.Planner,
        folds = r.Folds.ToArray(),
        gpus = r.Resources.Gpus,
        cpus = r.Resources.Cpus,
        memoryMib = r.Resources.MemoryMib,
        timeLimitSeconds = r.Resources.TimeLimitSeconds,
        partition = r.Resources.Partition,
        modelId = r.ModelId,
        trigger = r.Trigger,
        comparison = ModelsCommand.ComparisonJson(r.Comparison),
        error = r.Error,
        createTime = Formatting.TimeValue(r.CreateTime),
        startTime = Formatting.TimeValue(r.StartTime),
        finishTime = Formatting.TimeValue(r.FinishTime),
        steps = r.Steps.Select(s => new
        {
            kind = s.Kind,
            fold = s.Fold,
            state = Formatting.Word(s.State),
            jobId = s.JobId,
            backendJobId = s.BackendJobId,
            host = s.Host,
            gpus = s.Gpus,
            exitCode = s.HasExitCode ? s.ExitCode : (int?)null,
            logPath = s.LogPath,
            latestEpoch = s.LatestEpoch is null ? null : EpochJson(s.LatestEpoch),
            error = s.Error,
            startTime = Formatting.TimeValue(s.StartTime),
            finishTime = Formatting.TimeValue(s.FinishTime),
        }).ToArray(),
    };

    private static object EpochJson(TrainingEpoch e) => new
    {
        fold = e.Fold,
        epoch = e.Epoch,
        learningRate = e.HasLearningRate ? e.LearningRate : (double?)null,
        trainLoss = e.HasTrainLoss ? e.TrainLoss : (double?)null,
        valLoss = e.HasValLoss ? e.ValLoss : (double?)null,
        pseudoDice = e.PseudoDice.ToArray(),
        epochSeconds = e.HasEpochSeconds ? e.EpochSeconds : (double?)null,
    };

    [GeneratedRegex("^([0-9]+)([MmGgTt]?)$", RegexOptions.CultureInvariant)]
    private static partial Regex MemoryPattern();
}
