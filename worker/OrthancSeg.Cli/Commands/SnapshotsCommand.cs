using System.CommandLine;
using System.Globalization;
using Grpc.Core;
using OrthancSeg.Cli.Connection;
using OrthancSeg.Cli.Output;
using OrthancSeg.Contracts.V1;

namespace OrthancSeg.Cli.Commands;

/// <summary>`orthancseg snapshots export|list|show`: nnU-Net dataset snapshots of a workflow.</summary>
internal static class SnapshotsCommand
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    public static Command Create()
    {
        var command = new Command("snapshots", "Export a workflow as an nnU-Net dataset and list or show the numbered snapshots");
        command.Subcommands.Add(ExportCommand());
        command.Subcommands.Add(ListCommand());
        command.Subcommands.Add(ShowCommand());
        return command.WithExamples(
            "orthancseg snapshots export --workflow liver-ct --wait",
            "orthancseg snapshots list");
    }

    private static Command ExportCommand()
    {
        var workflow = new Option<string>("--workflow") { Description = "The workflow to export", Required = true };
        var wait = new Option<bool>("--wait") { Description = "Follow the export with a progress bar until it succeeds or fails (exit code 1 when it fails)" };
        var command = new Command("export", "Start a new snapshot: every case with an accepted label, written to <nnUNet_raw>/DatasetNNN_Name") { workflow, wait };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var started = (await worker.Snapshots.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = parseResult.GetValue(workflow)! },
                deadline: DateTime.UtcNow + Deadline, cancellationToken: ct)).Snapshot;
            if (!parseResult.GetValue(wait))
            {
                if (output.Json)
                {
                    output.WriteJson(ToJson(started));
                }
                else
                {
                    output.Line(string.Create(CultureInfo.InvariantCulture,
                        $"Snapshot {started.Id} of {started.Workflow} queued; it will be written to {started.DatasetPath}. Follow it with: orthancseg snapshots show {started.Id}"));
                }
                return ExitCodes.Ok;
            }
            using (var watch = worker.Snapshots.WatchSnapshot(new WatchSnapshotRequest { Id = started.Id }, cancellationToken: ct))
            {
                await foreach (var update in watch.ResponseStream.ReadAllAsync(ct))
                {
                    var s = update.Snapshot;
                    output.Progress(string.Create(CultureInfo.InvariantCulture, $"snapshot {s.Id}"), s.CasesDone, s.CasesTotal, "cases",
                        $"{Megabytes(s.BytesRead)} read  {Megabytes(s.BytesWritten)} written  {Formatting.Word(s.State)}");
                }
            }
            output.EndProgress();
            var final = (await worker.Snapshots.GetSnapshotAsync(new GetSnapshotRequest { Id = started.Id }, deadline: DateTime.UtcNow + Deadline, cancellationToken: ct)).Snapshot;
            Print(output, final);
            return final.State == SnapshotState.Succeeded ? ExitCodes.Ok : ExitCodes.Unhealthy;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg snapshots export --workflow liver-ct",
            "orthancseg snapshots export --workflow liver-ct --wait",
            "orthancseg snapshots export --workflow liver-ct --wait --json");
    }

    private static Command ListCommand()
    {
        var workflow = new Option<string?>("--workflow") { Description = "Only snapshots of this workflow" };
        var command = new Command("list", "List snapshots, newest first") { workflow };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var request = new ListSnapshotsRequest { Workflow = parseResult.GetValue(workflow) ?? "", PageSize = 500 };
            var all = await Paging.AllAsync(async token =>
            {
                request.PageToken = token;
                var page = await worker.Snapshots.ListSnapshotsAsync(request, deadline: DateTime.UtcNow + Deadline, cancellationToken: ct);
                return (page.Snapshots.AsEnumerable(), page.NextPageToken);
            });
            if (output.Json)
            {
                output.WriteJson(all.Select(ToJson));
                return ExitCodes.Ok;
            }
            output.Table(["SNAPSHOT", "WORKFLOW", "STATE", "CASES", "LEFT OUT", "REUSED", "VERIFIED", "TIME", "CREATED", "DATASET"],
                all.Select(s => (IReadOnlyList<string>)[
                    Formatting.Number(s.Id), s.Workflow, Formatting.Word(s.State), Formatting.Number(s.IncludedCount), Formatting.Number(s.ExcludedCount),
                    Formatting.Number(s.ReusedCount), s.Verification is null ? "" : s.Verification.Passed ? "yes" : "NO", Seconds(s.DurationMs),
                    Formatting.Time(s.CreateTime), s.DatasetPath]));
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg snapshots list",
            "orthancseg snapshots list --workflow liver-ct --json");
    }

    private static Command ShowCommand()
    {
        var id = new Argument<long>("snapshot") { Description = "The snapshot number" };
        var command = new Command("show", "Show a snapshot: its cases with hashes, the cases left out and why, the verification and dataset.json") { id };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var snapshot = (await worker.Snapshots.GetSnapshotAsync(new GetSnapshotRequest { Id = parseResult.GetValue(id) },
                deadline: DateTime.UtcNow + Deadline, cancellationToken: ct)).Snapshot;
            Print(output, snapshot);
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg snapshots show 3",
            "orthancseg snapshots show 3 --json");
    }

    private static void Print(ConsoleOutput output, Snapshot s)
    {
        if (output.Json)
        {
            output.WriteJson(ToJson(s));
            return;
        }
        output.Table(["FIELD", "VALUE"], new List<IReadOnlyList<string>>
        {
            new[] { "snapshot", Formatting.Number(s.Id) },
            new[] { "workflow", s.Workflow },
            new[] { "state", Formatting.Word(s.State) + (s.Error.Length > 0 ? $": {s.Error}" : "") },
            new[] { "dataset", s.DatasetPath },
            new[] { "cases", $"{s.IncludedCount} included ({s.ReusedCount} reused from the previous snapshot), {s.ExcludedCount} left out" },
            new[] { "read / written", $"{Megabytes(s.BytesRead)} DICOM / {Megabytes(s.BytesWritten)} NIfTI" },
            new[] { "transfer", Transfer(s) },
            new[] { "verification", s.Verification is null ? "not run" : s.Verification.Passed ? $"passed ({s.Verification.CheckedFiles} files)" : $"FAILED: {string.Join("; ", s.Verification.Problems)}" },
            new[] { "time", Seconds(s.DurationMs) },
            new[] { "created", Formatting.Time(s.CreateTime) },
            new[] { "finished", Formatting.Time(s.FinishTime) },
            new[] { "job", s.JobId == 0 ? "" : $"{s.JobId} (orthancseg jobs show {s.JobId}; jobs cancel {s.JobId})" },
        });
        if (s.Cases.Count > 0)
        {
            output.Line();
            output.Table(["CASE", "REUSED", "LABEL (SEG SOP INSTANCE UID)", "IMAGE SHA-256", "LABEL SHA-256"], s.Cases.Select(c => (IReadOnlyList<string>)[
                c.CaseKey, c.Reused ? "yes" : "no", c.LabelSopInstanceUid, c.ImageSha256[..16] + "…", c.LabelSha256[..16] + "…"]));
        }
        if (s.Excluded.Count > 0)
        {
            output.Line();
            output.Table(["LEFT OUT", "REASON"], s.Excluded.Select(e => (IReadOnlyList<string>)[e.CaseKey, e.Reason]));
        }
        if (s.DatasetJson.Length > 0)
        {
            output.Line();
            output.Line($"dataset.json (SHA-256 {s.DatasetJsonSha256}):");
            output.Line(s.DatasetJson);
        }
    }

    /// <summary>"fetched 412.0 MB (2060 instances) in 38.1 s, 10.8 MB/s, 54.1 instances/s": the fetch from Orthanc, parallel fetches counted once.</summary>
    internal static string Transfer(Snapshot s) => s.FetchMs == 0
        ? s.ReusedCount == s.IncludedCount && s.IncludedCount > 0 ? "nothing fetched (every case reused)" : ""
        : string.Create(CultureInfo.InvariantCulture,
            $"fetched {Megabytes(s.BytesRead)} ({s.InstancesRead} instances) in {s.FetchMs / 1000.0:0.0} s, {s.BytesRead / 1e3 / s.FetchMs:0.0} MB/s, {s.InstancesRead * 1e3 / s.FetchMs:0.0} instances/s");

    private static string Megabytes(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e6:0.0} MB");

    private static string Seconds(long milliseconds) => milliseconds == 0 ? "" : string.Create(CultureInfo.InvariantCulture, $"{milliseconds / 1000.0:0.0} s");

    private static object ToJson(Snapshot s) => new
    {
        id = s.Id,
        workflow = s.Workflow,
        state = Formatting.Word(s.State),
        datasetPath = s.DatasetPath,
        casesTotal = s.CasesTotal,
        casesDone = s.CasesDone,
        bytesRead = s.BytesRead,
        bytesWritten = s.BytesWritten,
        includedCount = s.IncludedCount,
        excludedCount = s.ExcludedCount,
        reusedCount = s.ReusedCount,
        cases = s.Cases.Select(c => new
        {
            caseKey = c.CaseKey,
            labelSopInstanceUid = c.LabelSopInstanceUid,
            imageFile = c.ImageFile,
            imageSha256 = c.ImageSha256,
            labelFile = c.LabelFile,
            labelSha256 = c.LabelSha256,
            bytes = c.Bytes,
            reused = c.Reused,
        }),
        excluded = s.Excluded.Select(e => new { caseKey = e.CaseKey, reason = e.Reason }),
        verification = s.Verification is null ? null : new { passed = s.Verification.Passed, problems = s.Verification.Problems.ToArray(), checkedFiles = s.Verification.CheckedFiles },
        datasetJson = s.DatasetJson,
        datasetJsonSha256 = s.DatasetJsonSha256,
        error = s.Error,
        createTime = Formatting.TimeValue(s.CreateTime),
        startTime = Formatting.TimeValue(s.StartTime),
        finishTime = Formatting.TimeValue(s.FinishTime),
        durationMs = s.DurationMs,
        jobId = s.JobId,
        instancesRead = s.InstancesRead,
        fetchMs = s.FetchMs,
        megabytesPerSecond = s.FetchMs == 0 ? 0 : Math.Round(s.BytesRead / 1e3 / s.FetchMs, 1),
        instancesPerSecond = s.FetchMs == 0 ? 0 : Math.Round(s.InstancesRead * 1e3 / s.FetchMs, 1),
    };
}
