using OrthancSeg.Contracts.V1;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.IntegrationTests.Ohif;

namespace OrthancSeg.IntegrationTests.Records;

/// <summary>
/// The OHIF user's path, in a real browser: a case recorded from an uploaded series is opened in OHIF 3.13.2's
/// segmentation mode, painted with the brush on three slices and saved with OHIF's own Export → DICOM SEG → Save.
/// The bridge forwards the stored SEG and the worker records it as the case's accepted, current label on
/// exactly the painted slices, its default segment name mapped by number.
/// </summary>
public sealed class OhifLabelTests
{
    private const int Slices = 12;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(180);

    [Fact]
    public async Task A_segmentation_painted_and_saved_in_OHIF_becomes_the_accepted_label_of_its_case()
    {
        await using var harness = await RecordsHarness.StartAsync();
        await harness.Workflows.CreateWorkflowAsync(new CreateWorkflowRequest
        {
            Workflow = new Workflow
            {
                Name = "phantom-ct",
                DatasetId = 502,
                Selection = new SelectionRule { Modality = "CT" },
                Labels = { new LabelDefinition { Value = 1, Name = "liver" } },
            },
        });
        using var series = await CtSeries.CreateAsync(Slices);
        await harness.OrthancServer.UploadAsync(series.Files);
        await harness.WaitForCountAsync("SELECT count(*) FROM cases", 1, Patience, "the case of the uploaded series");
        var recorded = Assert.Single((await harness.Cases.ListCasesAsync(new ListCasesRequest())).Cases);
        Assert.Equal(series.SeriesInstanceUid, recorded.SeriesInstanceUid);

        await using var ohif = await OhifServer.StartAsync(harness.OrthancServer);
        int[] paintAt = [3, 6, 9];
        var report = await PaintAndSaveScript.RunAsync(ohif, series.StudyInstanceUid, Slices, paintAt, $"OrthancSeg label {series.PatientId}",
            Path.Combine(RepositoryPaths.Artifacts, "ohif-label"), harness.OrthancServer.LogTail);
        Assert.Equal(200, report.StowStatus);

        await harness.WaitForCountAsync("SELECT count(*) FROM labels", 1, Patience, "the label of the SEG saved in OHIF");
        var label = Assert.Single((await harness.Labels.ListLabelsAsync(new ListLabelsRequest { CaseKey = recorded.CaseKey })).Labels);
        Assert.True(label.Verdict == LabelVerdict.Accepted, label.RejectionReason);
        Assert.True(label.IsCurrent);
        Assert.Equal(report.SegSopInstanceUid, label.SopInstanceUid);
        Assert.Equal(LabelSource.Manual, label.Source);
        var segment = Assert.Single(label.Segments);
        Assert.Equal(("Segment 1", 1, SegmentMatch.OhifDefaultName), (segment.SegmentLabel, segment.LabelValue, segment.Match));
        // OHIF shows an axial CT in descending z: its slice k of N is the case's ascending slice N − k.
        Assert.Equal(paintAt.Select(k => Slices - k).Order(), label.PaintedSlices);
        Assert.Equal(CaseStatus.Labeled, (await harness.Cases.GetCaseAsync(new GetCaseRequest { CaseKey = recorded.CaseKey })).Case.Status);
    }
}
