using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Dicom;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.Tests.Support;

namespace OrthancSeg.IntegrationTests.Stack;

/// <summary>
/// The stack that `make up` starts heals itself: supervisord restarts a part that is killed or crashes, without anyone
/// acting, `make status` counts the restarts and restarts.log names each with its signal, and what was under way when
/// the part died is finished. One stack (in a folder only its owner can enter) serves every test; each test counts
/// only the restarts it caused, so the order they run in does not matter.
/// </summary>
[Collection(SupervisedStackCollection.Name)]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class SupervisionTests(SupervisedStack stack) : IAsyncLifetime
{
    /// <summary>What the issue asks of a restart: serving again within 15 s of the death, nobody acting.</summary>
    private static readonly TimeSpan Recovery = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(3);
    private static readonly DicomTag ContentSequence = new(0x0040, 0xA730);
    private static readonly DicomTag TextValue = new(0x0040, 0xA160);

    // Each test's series carry their own description, admitted by a workflow of their own.
    private const string RecordingWorkflow = "supervised-ct";
    private const string ExportWorkflow = "supervised-export";

    public async Task InitializeAsync()
    {
        var workflows = await stack.CliAsync("workflows", "list");
        if (!workflows.Contains(RecordingWorkflow, StringComparison.Ordinal))
        {
            // Through the CLI make up installed, as an operator would.
            await stack.CliAsync("workflows", "create", "--name", RecordingWorkflow, "--dataset-id", "601", "--modality", "CT",
                "--series-description", "^Supervised", "--labels", "liver=1");
            await stack.CliAsync("workflows", "create", "--name", ExportWorkflow, "--dataset-id", "602", "--modality", "CT",
                "--series-description", "^Export", "--labels", "liver=1");
        }
    }

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Orthanc_killed_with_SIGKILL_serves_again_within_15_s_and_a_series_uploaded_just_before_is_recorded_once()
    {
        var restartsBefore = SupervisedStack.RestartsIn(await stack.StatusAsync(), "Orthanc");
        var series = new TestSeries(slices: 3, description: "Supervised kill");
        await UploadAsync(series.Files());

        var killed = await stack.KillAsync("orthanc");
        var clock = Stopwatch.StartNew();
        await WaitForOrthancAsync(killed);

        Assert.True(clock.Elapsed <= Recovery, $"Orthanc served again only after {clock.Elapsed}");
        await AssertRecordedOnceAsync(series);
        var status = await stack.StatusAsync();
        Assert.Equal(restartsBefore + 1, SupervisedStack.RestartsIn(status, "Orthanc"));
        Assert.Contains($"orthanc exited (terminated by SIGKILL; not expected), pid {killed}", await File.ReadAllTextAsync(stack.RestartsLog), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Orthanc_crashed_by_an_upload_nested_50_deep_serves_again_within_15_s_and_a_series_uploaded_just_before_is_recorded_once()
    {
        var restartsBefore = SupervisedStack.RestartsIn(await stack.StatusAsync(), "Orthanc");
        var series = new TestSeries(slices: 3, description: "Supervised crash");
        await UploadAsync(series.Files());
        var before = await stack.PidAsync("orthanc");

        // Orthanc 1.10.1 segfaults in DCMTK on an HTTP upload of a sequence nested 50 deep (docs/operations.md).
        var clock = Stopwatch.StartNew();
        using (var orthanc = stack.CreateOrthancClient())
        {
            using var content = new ByteArrayContent(DicomWriter.ToBytes(NestedFile(depth: 50)));
            content.Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
            await Assert.ThrowsAsync<HttpRequestException>(() => orthanc.PostAsync(new Uri("instances", UriKind.Relative), content));
        }
        await WaitForOrthancAsync(before);

        Assert.True(clock.Elapsed <= Recovery, $"Orthanc served again only after {clock.Elapsed}");
        await AssertRecordedOnceAsync(series);
        var status = await stack.StatusAsync();
        Assert.Equal(restartsBefore + 1, SupervisedStack.RestartsIn(status, "Orthanc"));
        // The crash is named with the part and its signal, in restarts.log and as the part's last restart in make status.
        Assert.Contains($"orthanc exited (terminated by SIGSEGV", await File.ReadAllTextAsync(stack.RestartsLog), StringComparison.Ordinal);
        Assert.Matches(@"last: \S+ orthanc exited \(terminated by SIGSEGV", status);
    }

    [Fact]
    public async Task Worker_killed_with_SIGKILL_answers_again_within_15_s_and_finishes_the_export_it_was_running()
    {
        var restartsBefore = SupervisedStack.RestartsIn(await stack.StatusAsync(), "Worker");
        // Ten series of 64 slices, fetched one request at a time (the stack's worker runs with SeriesInFlight 1 and
        // RequestsPerSeries 1): an export of several seconds, so the kill lands in its middle.
        var series = Enumerable.Range(0, 10).Select(_ => new TestSeries(slices: 64, rows: 128, columns: 128, description: "Export phantom")).ToList();
        foreach (var s in series)
        {
            await UploadAsync(s.Files());
        }
        foreach (var s in series)
        {
            await UploadAsync([s.Seg([new(1, "liver")], [new(10, 1)])]);
        }
        await WaitUntilAsync(async () => (await ListCasesAsync(ExportWorkflow)).Count(c => c.Status == CaseStatus.Labeled) == series.Count,
            Patience, "10 labelled cases");
        var worker = await stack.PidAsync("worker");
        var snapshot = (await stack.Snapshots.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = ExportWorkflow })).Snapshot;
        await WaitUntilAsync(async () =>
        {
            var now = (await stack.Snapshots.GetSnapshotAsync(new GetSnapshotRequest { Id = snapshot.Id })).Snapshot;
            Assert.NotEqual(SnapshotState.Succeeded, now.State);
            return now.State == SnapshotState.Running && now.CasesDone >= 1;
        }, Patience, "the export to be under way");

        await SupervisedStack.KillAsync(worker);
        var clock = Stopwatch.StartNew();
        // Killed in the middle: the export is still recorded as running, with cases left to do.
        Assert.Equal(1, await stack.CountAsync($"SELECT count(*) FROM snapshots WHERE id = {snapshot.Id} AND state = 'running' AND cases_done < {series.Count}"));
        await WaitUntilAsync(async () => await stack.PidAsync("worker") is var pid && pid > 0 && pid != worker && await stack.WorkerServingAsync(),
            Recovery, "the restarted worker to report SERVING");

        Assert.True(clock.Elapsed <= Recovery, $"the worker answered again only after {clock.Elapsed}");
        // The restarted worker sees that the process holding the export's lease has ended and takes the job over.
        await WaitUntilAsync(async () =>
            (await stack.Snapshots.GetSnapshotAsync(new GetSnapshotRequest { Id = snapshot.Id })).Snapshot.State is SnapshotState.Succeeded or SnapshotState.Failed,
            Patience, "the export to finish");
        var finished = (await stack.Snapshots.GetSnapshotAsync(new GetSnapshotRequest { Id = snapshot.Id })).Snapshot;
        Assert.True(finished.State == SnapshotState.Succeeded, finished.Error);
        Assert.Equal(series.Count, finished.IncludedCount);
        Assert.True(finished.Verification.Passed, string.Join("; ", finished.Verification.Problems));
        Assert.Equal(2, await stack.CountAsync($"SELECT j.attempts FROM jobs j JOIN snapshots s ON s.job_id = j.id WHERE s.id = {snapshot.Id}"));
        Assert.Equal(restartsBefore + 1, SupervisedStack.RestartsIn(await stack.StatusAsync(), "Worker"));
        Assert.Contains($"worker exited (terminated by SIGKILL; not expected), pid {worker}", await File.ReadAllTextAsync(stack.RestartsLog), StringComparison.Ordinal);
    }

    [Fact]
    public async Task PostgreSQL_killed_with_SIGKILL_comes_back_and_Orthanc_whose_plugin_never_reconnects_is_restarted_and_records_again()
    {
        var status = await stack.StatusAsync();
        var (pgBefore, orthancBefore) = (SupervisedStack.RestartsIn(status, "PostgreSQL"), SupervisedStack.RestartsIn(status, "Orthanc"));
        var orthancPid = await stack.PidAsync("orthanc");

        var killed = await stack.KillAsync("postgres");
        var clock = Stopwatch.StartNew();
        // Orthanc answers 503 "database not available" for ever after its database went away, unless it is restarted too.
        await WaitForOrthancAsync(orthancPid);

        Assert.True(clock.Elapsed <= Recovery, $"Orthanc served again only after {clock.Elapsed}");
        var series = new TestSeries(slices: 2, description: "Supervised after PostgreSQL");
        await UploadAsync(series.Files());
        await AssertRecordedOnceAsync(series);
        status = await stack.StatusAsync();
        // A PostgreSQL killed hard may fail its first start while its orphaned backends still hold the shared memory;
        // supervisord tries again after a delay, and each attempt is a restart.
        Assert.InRange(SupervisedStack.RestartsIn(status, "PostgreSQL"), pgBefore + 1, pgBefore + 5);
        Assert.Equal(orthancBefore + 1, SupervisedStack.RestartsIn(status, "Orthanc"));
        var log = await File.ReadAllTextAsync(stack.RestartsLog);
        Assert.Contains($"postgres exited (terminated by SIGKILL; not expected), pid {killed}", log, StringComparison.Ordinal);
        Assert.Contains("orthanc restarted because postgres exited", log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_viewer_is_served_and_saves_through_nginx_from_a_state_folder_only_its_owner_can_enter()
    {
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(stack.PrivateFolder));
        using var browser = new HttpClient { BaseAddress = stack.ViewerUrl };

        var page = await browser.GetStringAsync(new Uri("/", UriKind.Relative));
        Assert.Contains("<html", page, StringComparison.OrdinalIgnoreCase);
        using (var config = await browser.GetAsync(new Uri("app-config.js", UriKind.Relative)))
        {
            Assert.True(config.IsSuccessStatusCode, $"app-config.js answered {(int)config.StatusCode}");
        }
        // STOW of a 512 x 512 instance (a request body nginx's workers buffer), then its pixels by WADO-RS (a response
        // larger than nginx's buffers): both pass through nginx's temporary folder.
        using var series = await CtSeries.CreateAsync(slices: 1, size: 512);
        using var body = new MultipartContent("related", "orthancseg-boundary");
        body.Headers.ContentType!.Parameters.Add(new NameValueHeaderValue("type", "\"application/dicom\""));
        var part = new ByteArrayContent(await File.ReadAllBytesAsync(series.Files[0]));
        part.Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
        body.Add(part);
        using (var stored = await browser.PostAsync(new Uri("dicom-web/studies", UriKind.Relative), body))
        {
            Assert.True(stored.IsSuccessStatusCode, $"STOW through nginx answered {(int)stored.StatusCode}: {await stored.Content.ReadAsStringAsync()}");
        }
        var instances = await browser.GetStringAsync(new Uri($"dicom-web/studies/{series.StudyInstanceUid}/series/{series.SeriesInstanceUid}/instances", UriKind.Relative));
        using var found = JsonDocument.Parse(instances);
        var sop = found.RootElement[0].GetProperty("00080018").GetProperty("Value")[0].GetString();
        using var frame = await browser.GetAsync(new Uri($"dicom-web/studies/{series.StudyInstanceUid}/series/{series.SeriesInstanceUid}/instances/{sop}/frames/1", UriKind.Relative));
        Assert.True(frame.IsSuccessStatusCode, $"WADO-RS through nginx answered {(int)frame.StatusCode}");
        Assert.True((await frame.Content.ReadAsByteArrayAsync()).Length > 512 * 512 * 2, "the frame came back short");
    }

    [Fact]
    public async Task Every_process_of_the_stack_but_supervisord_runs_as_a_user_other_than_root_and_nothing_in_its_state_is_open_to_others()
    {
        // The stack was started by root (the tests run as root), from a clone in a folder only root can enter.
        Assert.Equal(0, await IdAsync("-u"));
        var supervisord = int.Parse(await File.ReadAllTextAsync(Path.Combine(stack.StateFolder, "run", "supervisord.pid")), CultureInfo.InvariantCulture);
        var processes = DescendantsOf(supervisord);
        // PostgreSQL and its backends, Orthanc, the worker, php-fpm and its workers, nginx and its worker, the crash-recorder.
        foreach (var program in new[] { "postgres", "Orthanc", "dotnet", "php-fpm8.2", "nginx", "python3" })
        {
            Assert.Contains(processes, p => p.Name == program);
        }
        var asRoot = processes.Where(p => p.Uids.Contains(0)).Select(p => $"{p.Pid} {p.Name} (Uid: {string.Join(' ', p.Uids)})").ToList();
        Assert.True(asRoot.Count == 0, $"processes of the stack with root among their user ids:\n{string.Join('\n', asRoot)}");
        var (orthancseg, postgres) = (await IdAsync("-u", "orthancseg"), await IdAsync("-u", "postgres"));
        Assert.All(processes, p => Assert.True(p.Uids.All(uid => uid == (p.Name == "postgres" ? postgres : orthancseg)),
            $"{p.Pid} {p.Name} runs as {string.Join(' ', p.Uids)}, not as {(p.Name == "postgres" ? "postgres" : "orthancseg")}"));
        // make status says so, too.
        var status = await stack.StatusAsync();
        Assert.Matches(@"PostgreSQL\s+running.* as postgres,", status);
        foreach (var part in new[] { "Orthanc", "Worker", "Adminer", "OHIF" })
        {
            Assert.Matches($@"{part}\s+running.* as orthancseg,", status);
        }

        // Walked without following links (the OHIF viewer, public code, lives outside): no file, folder or socket
        // with any permission for others.
        var open = new List<string>();
        Walk(new DirectoryInfo(stack.StateFolder), open);
        Assert.True(open.Count == 0, $"{open.Count} entries of the state folder are open to others, e.g.:\n{string.Join('\n', open.Take(20))}");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.Combine(stack.StateFolder, "secrets")));
        Assert.All(Directory.GetFiles(Path.Combine(stack.StateFolder, "secrets")),
            f => Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(f)));

        // And the stack still works end to end: an upload becomes a case, which the CLI (run by root, finding the
        // address and token through the clone's .stack link) lists.
        var series = new TestSeries(slices: 2, description: "Supervised unprivileged");
        await UploadAsync(series.Files());
        await AssertRecordedOnceAsync(series);
        var recorded = Assert.Single(await ListCasesAsync(RecordingWorkflow), c => c.SeriesInstanceUid == series.SeriesInstanceUid);
        Assert.Contains(recorded.CaseKey, await stack.CliAsync("cases", "list", "--workflow", RecordingWorkflow), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_logs_nginx_writes_itself_are_rotated_past_20_MB_and_nginx_goes_on_logging_into_a_new_file()
    {
        var log = Path.Combine(stack.StateFolder, "logs", "web", "nginx-access.log");
        var old = log + ".1";
        File.Delete(old);
        // As if the viewer had been busy for weeks: the log grows past the 20 MB that supervisord's logs rotate at.
        await using (var grow = new FileStream(log, FileMode.Append, FileAccess.Write))
        {
            var line = System.Text.Encoding.ASCII.GetBytes("127.0.0.1 [04/Dec/2026:00:00:00 +0000] \"GET /dicom-web/studies\" 200 2 0.001\n");
            for (var written = 0L; written <= 21 * 1024 * 1024; written += line.Length)
            {
                grow.Write(line);
            }
        }

        // The crash-recorder looks every minute (supervisord's TICK_60).
        await WaitUntilAsync(() => Task.FromResult(File.Exists(old)), TimeSpan.FromSeconds(90), "nginx-access.log to be rotated");
        Assert.True(new FileInfo(old).Length > 20 * 1024 * 1024, "the rotated log is not the one that grew");
        using var browser = new HttpClient { BaseAddress = stack.ViewerUrl };
        const string marker = "app-config.js";
        // A request made in the moment between the move and nginx reopening its log lands in the old file: ask again.
        await WaitUntilAsync(async () =>
        {
            using (await browser.GetAsync(new Uri(marker, UriKind.Relative)))
            {
            }
            return File.Exists(log) && (await File.ReadAllTextAsync(log)).Contains(marker, StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(10), "nginx to log into a new nginx-access.log");
        Assert.True(new FileInfo(log).Length < 1024 * 1024, "nginx went on writing into the rotated file");
    }

    private sealed record StackProcess(int Pid, string Name, int[] Uids);

    /// <summary>Every process below <paramref name="root"/> (not itself), with its real, effective, saved and file-system user ids.</summary>
    private static List<StackProcess> DescendantsOf(int root)
    {
        var parents = new Dictionary<int, int>();
        foreach (var directory in Directory.GetDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(directory), out var pid) && ReadStatus(pid) is { } status)
            {
                parents[pid] = int.Parse(status["PPid"], CultureInfo.InvariantCulture);
            }
        }
        var found = new List<StackProcess>();
        foreach (var pid in parents.Keys)
        {
            var ancestor = parents[pid];
            while (ancestor > 1 && ancestor != root)
            {
                ancestor = parents.GetValueOrDefault(ancestor, 1);
            }
            if (ancestor == root && ReadStatus(pid) is { } status)
            {
                var uids = status["Uid"].Split('\t', StringSplitOptions.RemoveEmptyEntries).Select(u => int.Parse(u, CultureInfo.InvariantCulture)).ToArray();
                found.Add(new StackProcess(pid, status["Name"], uids));
            }
        }
        return found;
    }

    private static Dictionary<string, string>? ReadStatus(int pid)
    {
        try
        {
            return File.ReadAllLines($"/proc/{pid}/status")
                .Select(line => line.Split(':', 2))
                .Where(parts => parts.Length == 2)
                .ToDictionary(parts => parts[0], parts => parts[1].Trim());
        }
        catch (IOException)
        {
            return null; // The process ended while being read.
        }
    }

    private static void Walk(DirectoryInfo directory, List<string> open)
    {
        const UnixFileMode others = UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
        if ((directory.UnixFileMode & others) != 0)
        {
            open.Add($"{directory.FullName} ({directory.UnixFileMode})");
        }
        foreach (var entry in directory.EnumerateFileSystemInfos())
        {
            if (entry.LinkTarget is not null)
            {
                continue;
            }
            if (entry is DirectoryInfo child)
            {
                Walk(child, open);
            }
            else if ((entry.UnixFileMode & others) != 0)
            {
                open.Add($"{entry.FullName} ({entry.UnixFileMode})");
            }
        }
    }

    private static async Task<int> IdAsync(params string[] arguments) =>
        int.Parse((await ProcessRunner.RunAsync("id", arguments, TimeSpan.FromSeconds(10))).Trim(), CultureInfo.InvariantCulture);

    [Fact]
    public async Task The_generated_systemd_units_pass_systemd_analyze_verify()
    {
        var units = Path.Combine(stack.StackDirectory, "systemd");
        var files = Directory.GetFiles(units).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["orthancseg-adminer.service", "orthancseg-nginx.service", "orthancseg-orthanc.service", "orthancseg-postgres.service", "orthancseg-worker.service", "orthancseg.target"],
            files.Select(Path.GetFileName));
        foreach (var service in files.Where(f => f.EndsWith(".service", StringComparison.Ordinal)))
        {
            var text = await File.ReadAllTextAsync(service);
            Assert.Contains("Restart=on-failure", text, StringComparison.Ordinal);
            Assert.Contains("RestartSec=", text, StringComparison.Ordinal);
        }

        // systemd-analyze (package systemd, which make test installs) fails on a unit it cannot parse or a command that is
        // not there; it works without systemd being PID 1.
        await ProcessRunner.RunAsync("systemd-analyze", ["verify", .. files], TimeSpan.FromMinutes(1), workingDirectory: units);
    }

    private static DicomFile NestedFile(int depth)
    {
        var file = new TestSeries(slices: 1, description: "Nested").Files().Single();
        var item = new DicomDataset().SetString(TextValue, DicomVR.UT, "innermost");
        for (var level = 1; level < depth; level++)
        {
            item = new DicomDataset().SetSequence(ContentSequence, item);
        }
        file.Dataset.SetSequence(ContentSequence, item);
        return file;
    }

    private Task UploadAsync(IEnumerable<DicomFile> files) => stack.UploadAsync(files);

    /// <summary>Waits until supervisord runs a new Orthanc (not <paramref name="gone"/>) that answers /system.</summary>
    private async Task WaitForOrthancAsync(int gone) =>
        await WaitUntilAsync(async () => await stack.PidAsync("orthanc") is var pid && pid > 0 && pid != gone && await stack.OrthancAnswersAsync(),
            Recovery, "a restarted Orthanc to answer /system");

    private async Task AssertRecordedOnceAsync(TestSeries series)
    {
        await WaitUntilAsync(async () => (await ListCasesAsync(RecordingWorkflow)).Any(c => c.SeriesInstanceUid == series.SeriesInstanceUid && c.InstanceCount == series.Slices),
            Patience, $"series {series.SeriesInstanceUid} to be recorded with its {series.Slices} slices");
        await WaitUntilAsync(async () => await stack.CountAsync("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running', 'failed')") == 0,
            Patience, "the worker's queue to drain");
        var recorded = Assert.Single(await ListCasesAsync(RecordingWorkflow), c => c.SeriesInstanceUid == series.SeriesInstanceUid);
        var full = (await stack.Cases.GetCaseAsync(new GetCaseRequest { CaseKey = recorded.CaseKey })).Case;
        Assert.Equal(series.SopInstanceUids, full.SopInstanceUids);
        Assert.Equal(0, await stack.CountAsync("SELECT count(*) FROM jobs WHERE state = 'dead'"));
    }

    private async Task<List<Case>> ListCasesAsync(string workflow) =>
        [.. (await stack.Cases.ListCasesAsync(new ListCasesRequest { Workflow = workflow, PageSize = 100 })).Cases];

    private async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        try
        {
            await ProcessRunner.WaitUntilAsync(condition, timeout, what);
        }
        catch (TimeoutException e)
        {
            var log = Path.Combine(stack.StackDirectory, "logs", "worker.log");
            var tail = File.Exists(log) ? string.Join('\n', File.ReadLines(log).TakeLast(40)) : "(no worker log)";
            throw new TimeoutException($"{e.Message}\n--- make status ---\n{await stack.StatusAsync()}\n--- worker log ---\n{tail}", e);
        }
    }
}
