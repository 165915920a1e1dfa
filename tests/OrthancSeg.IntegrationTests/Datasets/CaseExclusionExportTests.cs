using System.Text.Json;
using OrthancSeg.Contracts.V1;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.IntegrationTests.Records;
using OrthancSeg.Tests.Support;
using static OrthancSeg.IntegrationTests.Datasets.SnapshotHarness;

namespace OrthancSeg.IntegrationTests.Datasets;

/// <summary>
/// A case a person excluded from training, end to end: the stack's Orthanc and the built worker record two labelled cases, an operator
/// excludes one, the export leaves it out with who, when and why, the retrain policy stops counting its label, and once it is included
/// again the next export takes it.
/// </summary>
public sealed class CaseExclusionExportTests : IDisposable
{
    private readonly string _raw = Directory.CreateTempSubdirectory("orthancseg-nnunet-raw-").FullName;

    public void Dispose() => Directory.Delete(_raw, recursive: true);

    [Fact]
    public async Task An_excluded_case_is_left_out_of_the_export_with_who_when_and_why_and_included_again_it_is_exported()
    {
        await using var harness = await RecordsHarness.StartAsync(Settings(_raw));
        var kept = new TestSeries(slices: 5, rows: 16, columns: 16);
        var blurred = new TestSeries(slices: 5, rows: 16, columns: 16);
        var keys = await LabelledCasesAsync(harness, kept, blurred);
        var (keptKey, blurredKey) = (keys[kept.SeriesInstanceUid], keys[blurred.SeriesInstanceUid]);
        var cases = new CaseService.CaseServiceClient(harness.Channel);
        // The harness's clients carry the admin token; these carry the operator's ("olga").
        var snapshots = new SnapshotService.SnapshotServiceClient(harness.Channel);
        var operatorToken = WorkerProcess.Bearer(harness.Worker.OperatorToken);
        Assert.Equal(2, await NewLabelsAsync(harness));

        var excluded = (await cases.ExcludeCaseAsync(new ExcludeCaseRequest { CaseKey = blurredKey, Reason = "  motion artefacts in slices 2-4\n" }, operatorToken)).Case;
        var again = (await cases.ExcludeCaseAsync(new ExcludeCaseRequest { CaseKey = blurredKey, Reason = "motion artefacts in slices 2-4" }, operatorToken)).Case;

        Assert.True(excluded.Excluded);
        Assert.Equal(("motion artefacts in slices 2-4", "olga"), (excluded.ExclusionReason, excluded.ExcludedBy));
        // Repeating the exclusion with the same reason changes nothing: who and when stay the first call's.
        Assert.Equal((excluded.ExcludeTime, excluded.ExcludedBy), (again.ExcludeTime, again.ExcludedBy));
        Assert.Equal(1, await NewLabelsAsync(harness));
        Assert.Equal([blurredKey], (await harness.Cases.ListCasesAsync(new ListCasesRequest { Workflow = "liver-ct", Excluded = true })).Cases.Select(c => c.CaseKey));
        Assert.Equal([keptKey], (await harness.Cases.ListCasesAsync(new ListCasesRequest { Workflow = "liver-ct", Excluded = false })).Cases.Select(c => c.CaseKey));
        Assert.Equal(2, (await harness.Cases.ListCasesAsync(new ListCasesRequest { Workflow = "liver-ct" })).Cases.Count);

        var first = await WaitForFinishAsync(harness, (await snapshots.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = "liver-ct" }, operatorToken)).Snapshot.Id);

        Assert.True(first.State == SnapshotState.Succeeded, first.Error);
        Assert.Equal([keptKey], first.Cases.Select(c => c.CaseKey));
        var left = Assert.Single(first.Excluded);
        Assert.Equal(blurredKey, left.CaseKey);
        Assert.Equal(Invariant($"excluded by olga at {excluded.ExcludeTime.ToDateTime():yyyy-MM-dd'T'HH:mm:ss'Z'}: motion artefacts in slices 2-4"), left.Reason);
        Assert.False(File.Exists(Path.Combine(first.DatasetPath, "imagesTr", $"{blurredKey}_0000.nii.gz")));
        Assert.True(File.Exists(Path.Combine(first.DatasetPath, "imagesTr", $"{keptKey}_0000.nii.gz")));

        // Included again with the CLI (twice: the second finds it included and answers it as it is); the next export takes it.
        foreach (var _ in new[] { 1, 2 })
        {
            var include = await CliProcess.RunAsync(["cases", "include", blurredKey, "--json", "--url", harness.WorkerAddress, "--token-file", harness.Worker.OperatorTokenFile]);
            Assert.True(include.ExitCode == 0, $"include exited {include.ExitCode}: {include.Stderr}");
            using var printed = JsonDocument.Parse(include.Stdout);
            Assert.False(printed.RootElement.GetProperty("excluded").GetBoolean());
        }
        Assert.Equal(2, await NewLabelsAsync(harness));

        var second = await WaitForFinishAsync(harness, (await snapshots.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = "liver-ct" }, operatorToken)).Snapshot.Id);

        Assert.True(second.State == SnapshotState.Succeeded, second.Error);
        Assert.Equal(new[] { keptKey, blurredKey }.Order(StringComparer.Ordinal), second.Cases.Select(c => c.CaseKey).Order(StringComparer.Ordinal));
        Assert.Empty(second.Excluded);
        // The case shows only its current state; the history keeps both changes with the token and the reason.
        Assert.Equal(1, await harness.CountAsync(
            $"SELECT count(*) FROM case_exclusion_history h JOIN cases c ON c.id = h.case_id WHERE c.case_key = '{blurredKey}' AND h.action = 'excluded' AND h.token_name = 'olga' AND h.reason = 'motion artefacts in slices 2-4'"));
        Assert.Equal(1, await harness.CountAsync(
            $"SELECT count(*) FROM case_exclusion_history h JOIN cases c ON c.id = h.case_id WHERE c.case_key = '{blurredKey}' AND h.action = 'included' AND h.token_name = 'olga'"));
        Assert.Equal(0, await harness.CountAsync($"SELECT count(*) FROM cases WHERE excluded_at IS NOT NULL OR excluded_by IS NOT NULL OR exclusion_reason IS NOT NULL"));
    }

    /// <summary>The retrain policy's count of newly accepted labels, as GetWorkflow reports it.</summary>
    private static async Task<long> NewLabelsAsync(RecordsHarness harness) =>
        (await harness.Workflows.GetWorkflowAsync(new GetWorkflowRequest { Name = "liver-ct" })).Workflow.RetrainPolicy.NewLabels;
}
