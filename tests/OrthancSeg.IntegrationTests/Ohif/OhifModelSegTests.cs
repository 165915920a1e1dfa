using System.Globalization;
using System.Text.Json;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Dicom;
using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Dicom.Volumes;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.IntegrationTests.Records;

namespace OrthancSeg.IntegrationTests.Ohif;

/// <summary>
/// Closing the loop in a real browser: a SEG written by our <see cref="SegmentationWriter"/> (as a model's prediction is)
/// is stored in the study of its series and recorded by the worker as a model label; OHIF 3.13.2 lists it, loads it
/// over the images without errors and shows its segment names and colours; the annotator corrects it with the brush and
/// saves, and the worker records the saved SEG as the case's current manual label beside the model's.
/// </summary>
public sealed class OhifModelSegTests
{
    private const int Slices = 12;
    private const string Model = "phantom-model-1";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(180);

    // Ascending slices (k = 0 is the lowest z) holding each structure; OHIF shows slice k as Slices − k.
    private static readonly Range LiverSlices = 3..9;
    private static readonly Range SpleenSlices = 0..6;
    private const int PaintedSlice = 10;

    [Fact]
    public async Task A_model_seg_opens_in_OHIF_with_its_names_and_colours_and_its_correction_becomes_the_current_label()
    {
        await using var harness = await RecordsHarness.StartAsync();
        await harness.Workflows.CreateWorkflowAsync(new CreateWorkflowRequest
        {
            Workflow = new Workflow
            {
                Name = "phantom-abdomen",
                DatasetId = 503,
                Selection = new SelectionRule { Modality = "CT" },
                Labels = { new LabelDefinition { Value = 1, Name = "liver" }, new LabelDefinition { Value = 2, Name = "spleen" } },
            },
        });
        using var series = await CtSeries.CreateAsync(Slices);
        await harness.OrthancServer.UploadAsync(series.Files);
        await harness.WaitForCountAsync("SELECT count(*) FROM cases", 1, Patience, "the case of the uploaded series");
        var recorded = Assert.Single((await harness.Cases.ListCasesAsync(new ListCasesRequest())).Cases);

        // The model's prediction: the dense sphere is "liver" on some slices, water at the left edge "spleen" on others.
        var files = series.Files.Select(DicomReader.ReadFile).ToList();
        var volume = SeriesVolumeBuilder.Build(files);
        var prediction = Predict(volume.Volume);
        var written = SegmentationWriter.Write(prediction, files.Select(f => f.Dataset).ToList(), [new(1, "liver"), new(2, "spleen")],
            new SegmentationWriterOptions(SegmentAlgorithmType.Automatic, Model, AlgorithmVersion: "3d_fullres fold all"));
        Assert.True(written.Written, written.NotWrittenReason);
        var modelSeg = written.Segmentation!;
        await harness.UploadAsync(DicomFile.Create(modelSeg));
        await harness.WaitForCountAsync("SELECT count(*) FROM labels", 1, Patience, "the label of the model's SEG");
        var modelLabel = Assert.Single((await harness.Labels.ListLabelsAsync(new ListLabelsRequest { CaseKey = recorded.CaseKey })).Labels);
        Assert.Equal((LabelSource.Model, LabelVerdict.Proposed, false), (modelLabel.Source, modelLabel.Verdict, modelLabel.IsCurrent));

        await using var ohif = await OhifServer.StartAsync(harness.OrthancServer);
        var artifacts = Path.Combine(RepositoryPaths.Artifacts, "ohif-model-seg");
        var reportName = $"Corrected {series.PatientId}";
        var report = await RunReviewAsync(ohif, harness, series.StudyInstanceUid, artifacts, new Dictionary<string, string>
        {
            ["SEG_DESCRIPTION"] = modelSeg.GetString(DicomTags.SeriesDescription)!,
            ["SEGMENTS"] = """[{"name":"liver"},{"name":"spleen"}]""",
            ["SHOW_SLICE"] = (Slices - 4).ToString(CultureInfo.InvariantCulture),
            ["PAINT_AT"] = (Slices - PaintedSlice).ToString(CultureInfo.InvariantCulture),
            ["REPORT_NAME"] = reportName,
        });
        var root = report.RootElement;

        // What the annotator saw: both segments, named and coloured as the SEG recommends (Slicer's liver and spleen
        // colours, through DICOM CIELab and OHIF's conversion back to RGB), over the images, and no error.
        Assert.Equal("Segmentation by phantom-model-1", modelSeg.GetString(DicomTags.SeriesDescription));
        var shown = root.GetProperty("segments").EnumerateArray()
            .Select(s => (Name: s.GetProperty("name").GetString()!, Colour: s.GetProperty("colour").EnumerateArray().Select(c => c.GetInt32()).ToArray()))
            .ToList();
        Assert.Equal(["liver", "spleen"], shown.Select(s => s.Name));
        AssertColour([221, 130, 101], shown[0].Colour);
        AssertColour([157, 108, 162], shown[1].Colour);
        Assert.True(root.GetProperty("overlay").GetDouble() > 0.005,
            $"the viewport shows no segmentation overlay on a slice with content (see {artifacts}/ohif-seg-loaded.png)");
        Assert.True(root.GetProperty("errors").GetArrayLength() == 0, $"OHIF reported errors while loading the SEG: {root.GetProperty("errors")}");
        Assert.True(File.Exists(Path.Combine(artifacts, "ohif-seg-loaded.png")));

        // What the worker recorded: the saved SEG is the case's current manual label, the model's stays beside it.
        Assert.Equal(200, root.GetProperty("stowStatus").GetInt32());
        Assert.True(root.GetProperty("listedInStudyBrowser").GetBoolean(), $"the study browser does not list \"{reportName}\" after saving");
        var savedUid = root.GetProperty("segSopInstanceUid").GetString();
        await harness.WaitForCountAsync("SELECT count(*) FROM labels", 2, Patience, "the label of the SEG saved in OHIF");
        var labels = (await harness.Labels.ListLabelsAsync(new ListLabelsRequest { CaseKey = recorded.CaseKey })).Labels;
        var corrected = Assert.Single(labels, l => l.SopInstanceUid == savedUid);
        Assert.True(corrected.Verdict == LabelVerdict.Accepted, corrected.RejectionReason);
        Assert.Equal((LabelSource.Manual, true), (corrected.Source, corrected.IsCurrent));
        Assert.Equal(["liver", "spleen"], corrected.Segments.OrderBy(s => s.LabelValue).Select(s => s.SegmentLabel));
        int[] predicted = [.. Enumerable.Range(SpleenSlices.Start.Value, SpleenSlices.End.Value - SpleenSlices.Start.Value)
            .Union(Enumerable.Range(LiverSlices.Start.Value, LiverSlices.End.Value - LiverSlices.Start.Value)).Order()];
        Assert.Equal(predicted, modelLabel.PaintedSlices);
        Assert.Equal([.. predicted, PaintedSlice], corrected.PaintedSlices);
        var model = Assert.Single(labels, l => l.SopInstanceUid == modelSeg.GetString(DicomTags.SOPInstanceUID));
        Assert.Equal((LabelSource.Model, false), (model.Source, model.IsCurrent));
        Assert.Equal(CaseStatus.Labeled, (await harness.Cases.GetCaseAsync(new GetCaseRequest { CaseKey = recorded.CaseKey })).Case.Status);
    }

    private static Volume Predict(Volume image)
    {
        var g = image.Geometry;
        var map = Volume.Allocate(g, VoxelType.UInt8);
        var hu = image.AsInt16();
        for (var k = 0; k < g.Slices; k++)
        {
            for (var r = 0; r < g.Rows; r++)
            {
                for (var c = 0; c < g.Columns; c++)
                {
                    var i = (((k * g.Rows) + r) * g.Columns) + c;
                    if (hu[i] >= 300 && k >= LiverSlices.Start.Value && k < LiverSlices.End.Value)
                    {
                        map.Data[i] = 1;
                    }
                    else if (hu[i] is > -100 and < 100 && c < 16 && k >= SpleenSlices.Start.Value && k < SpleenSlices.End.Value)
                    {
                        map.Data[i] = 2;
                    }
                }
            }
        }
        return map;
    }

    /// <summary>OHIF turns the SEG's CIELab back into RGB: within a unit or two of the RGB it was made from.</summary>
    private static void AssertColour(int[] expected, int[] shown) =>
        Assert.True(expected.Zip(shown).All(p => Math.Abs(p.First - p.Second) <= 3), $"swatch colour {string.Join(',', shown)}, expected about {string.Join(',', expected)}");

    private static async Task<JsonDocument> RunReviewAsync(OhifServer ohif, RecordsHarness harness, string studyUid, string artifacts,
        Dictionary<string, string> environment)
    {
        var script = Path.Combine(RepositoryPaths.EndToEnd, "ohif-seg-review.mjs");
        if (!Directory.Exists(Path.Combine(RepositoryPaths.EndToEnd, "node_modules", "playwright-core")))
        {
            throw new InvalidOperationException($"playwright-core is not installed in {RepositoryPaths.EndToEnd}: run `npm ci` there (make test does).");
        }
        if (Directory.Exists(artifacts))
        {
            Directory.Delete(artifacts, recursive: true);
        }
        environment["OHIF_URL"] = ohif.BaseUrl.ToString();
        environment["STUDY_UID"] = studyUid;
        environment["SLICES"] = Slices.ToString(CultureInfo.InvariantCulture);
        environment["ARTIFACTS"] = artifacts;
        string output;
        try
        {
            output = await ProcessRunner.RunAsync("node", [script], TimeSpan.FromMinutes(6), environment, RepositoryPaths.EndToEnd);
        }
        catch (InvalidOperationException exception)
        {
            throw new InvalidOperationException($"{exception.Message}\nScreenshots in {artifacts}\nOrthanc log:\n{harness.OrthancServer.LogTail()}", exception);
        }
        var line = output.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("{\"listed\"", StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"ohif-seg-review.mjs printed no result line:\n{output}");
        return JsonDocument.Parse(line);
    }
}
