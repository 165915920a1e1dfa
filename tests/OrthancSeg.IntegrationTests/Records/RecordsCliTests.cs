using System.Text.Json;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.Tests.Support;

namespace OrthancSeg.IntegrationTests.Records;

/// <summary>The operator's path: the built `orthancseg` CLI against a running worker and Orthanc.</summary>
public sealed class RecordsCliTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(180);

    [Fact]
    public async Task Operator_creates_a_workflow_and_reads_cases_and_labels_with_the_cli()
    {
        await using var harness = await RecordsHarness.StartAsync();
        var environment = new Dictionary<string, string> { ["ORTHANCSEG_URL"] = harness.WorkerAddress, ["ORTHANCSEG_TOKEN_FILE"] = harness.AdminTokenFile };

        var created = await CliProcess.RunAsync(["workflows", "create", "--name", "liver-ct", "--dataset-id", "501", "--modality", "CT",
            "--series-description", "(?i)abdomen|liver", "--labels", "liver=1,tumor=2", "--synonym", "tumor=lesion"], environment);
        Assert.True(created.ExitCode == 0, created.Stderr);
        Assert.Contains("liver-ct", created.Stdout, StringComparison.Ordinal);
        Assert.Contains("lesion", created.Stdout, StringComparison.Ordinal);

        var again = await CliProcess.RunAsync(["workflows", "create", "--name", "liver-ct", "--dataset-id", "502", "--labels", "liver=1"], environment);
        Assert.Equal(5, again.ExitCode);
        Assert.Contains("already exists", again.Stderr, StringComparison.Ordinal);
        var badLabels = await CliProcess.RunAsync(["workflows", "create", "--name", "lung-ct", "--dataset-id", "503", "--labels", "lung"], environment);
        Assert.Equal(2, badLabels.ExitCode);
        Assert.Contains("'lung' is not name=value", badLabels.Stderr, StringComparison.Ordinal);

        var labeled = new TestSeries(slices: 4);
        var plain = new TestSeries(slices: 2);
        await harness.UploadSeriesAsync(labeled);
        await harness.UploadSeriesAsync(plain);
        await harness.WaitForCountAsync("SELECT count(*) FROM cases", 2, Patience, "2 cases");
        await harness.UploadAsync(labeled.Seg([new(1, "liver"), new(2, "Lesion")], [new(1, 1), new(2, 2)], author: "Doe^Jane"));
        await harness.WaitForCountAsync("SELECT count(*) FROM labels", 1, Patience, "1 label");

        var list = await CliProcess.RunAsync(["cases", "list", "--workflow", "liver-ct", "--json"], environment);
        Assert.True(list.ExitCode == 0, list.Stderr);
        using var cases = JsonDocument.Parse(list.Stdout);
        Assert.Equal(2, cases.RootElement.GetArrayLength());
        var labeledCase = cases.RootElement.EnumerateArray().Single(c => c.GetProperty("seriesInstanceUid").GetString() == labeled.SeriesInstanceUid);
        Assert.Equal("labeled", labeledCase.GetProperty("status").GetString());
        var key = labeledCase.GetProperty("caseKey").GetString()!;

        var onlyUnlabeled = await CliProcess.RunAsync(["cases", "list", "--status", "unlabeled", "--json"], environment);
        using (var unlabeled = JsonDocument.Parse(onlyUnlabeled.Stdout))
        {
            Assert.Equal(plain.SeriesInstanceUid, Assert.Single(unlabeled.RootElement.EnumerateArray()).GetProperty("seriesInstanceUid").GetString());
        }

        var table = await CliProcess.RunAsync(["cases", "list"], environment);
        Assert.StartsWith("CASE", table.Stdout, StringComparison.Ordinal);
        Assert.Contains(key, table.Stdout, StringComparison.Ordinal);

        var show = await CliProcess.RunAsync(["cases", "show", key], environment);
        Assert.True(show.ExitCode == 0, show.Stderr);
        Assert.All(labeled.SopInstanceUids, uid => Assert.Contains(uid, show.Stdout, StringComparison.Ordinal));

        var labels = await CliProcess.RunAsync(["labels", "list", "--case", key, "--json"], environment);
        using (var json = JsonDocument.Parse(labels.Stdout))
        {
            var label = Assert.Single(json.RootElement.EnumerateArray());
            Assert.Equal("accepted", label.GetProperty("verdict").GetString());
            Assert.True(label.GetProperty("isCurrent").GetBoolean());
            Assert.Equal("Doe^Jane", label.GetProperty("author").GetString());
            Assert.Equal([1, 2], label.GetProperty("paintedSlices").EnumerateArray().Select(e => e.GetInt32()));
        }

        var missing = await CliProcess.RunAsync(["cases", "show", "liverct_nothere"], environment);
        Assert.Equal(4, missing.ExitCode);
        Assert.Contains("NotFound", missing.Stderr, StringComparison.Ordinal);

        var paused = await CliProcess.RunAsync(["workflows", "pause", "liver-ct", "--json"], environment);
        using (var json = JsonDocument.Parse(paused.Stdout))
        {
            Assert.Equal("paused", json.RootElement.GetProperty("state").GetString());
        }
        var workflows = await CliProcess.RunAsync(["workflows", "list"], environment);
        Assert.Contains("paused", workflows.Stdout, StringComparison.Ordinal);

        var dead = await CliProcess.RunAsync(["dead-letters", "list", "--json"], environment);
        Assert.True(dead.ExitCode == 0, dead.Stderr);
        Assert.Equal("[]", dead.Stdout.Trim());
        var retryNothing = await CliProcess.RunAsync(["dead-letters", "retry", "999999"], environment);
        Assert.Equal(4, retryNothing.ExitCode);
        Assert.Contains("NotFound", retryNothing.Stderr, StringComparison.Ordinal);
        var discardNothing = await CliProcess.RunAsync(["dead-letters", "discard", "999999"], environment);
        Assert.Equal(4, discardNothing.ExitCode);
        Assert.Contains("NotFound", discardNothing.Stderr, StringComparison.Ordinal);
        var noLabel = await CliProcess.RunAsync(["labels", "show", "999999"], environment);
        Assert.Equal(4, noLabel.ExitCode);
        Assert.Contains("NotFound", noLabel.Stderr, StringComparison.Ordinal);
    }
}
