using System.CommandLine;
using System.Globalization;
using OrthancSeg.Dicom;
using OrthancSeg.Dicom.Nifti;
using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Dicom.Volumes;
using OrthancSeg.Cli.Output;

namespace OrthancSeg.Cli.Convert;

/// <summary>
/// <c>orthancseg convert …</c>: offline conversions between DICOM series, DICOM SEG and NIfTI, with the same
/// code the worker uses, for checking data by hand and for scripts. They need no worker and no Orthanc.
/// Exit codes: 0 done, 1 refused (the message says why), 3 nothing written because the label map is empty (see <see cref="ExitCodes"/>).
/// </summary>
internal static class ConvertCommand
{

    public static Command Create()
    {
        var convert = new Command("convert", "Offline conversions: DICOM series → NIfTI, SEG → label NIfTI, label NIfTI → SEG");
        convert.Subcommands.Add(SeriesCommand());
        convert.Subcommands.Add(SegCommand());
        convert.Subcommands.Add(LabelsCommand());
        return convert.WithExamples(
            "orthancseg convert series ./ct-series/ ct.nii.gz",
            "orthancseg convert seg seg.dcm --series ./ct-series/ --labels liver=1,tumor=2 labels.nii.gz");
    }

    private static Option<string?> SeriesUidOption() => new("--series-uid")
    {
        Description = "SeriesInstanceUID to use when the folder holds several series",
    };

    private static Command SeriesCommand()
    {
        var folder = new Argument<string>("dicom-dir") { Description = "Folder with the DICOM files of the series (searched recursively)" };
        var output = new Argument<string>("out.nii.gz") { Description = "NIfTI-1 file to write (.nii.gz or .nii)" };
        var seriesUid = SeriesUidOption();
        var command = new Command("series", "Build a volume from a DICOM series and write it as NIfTI; prints a one-line geometry summary")
        {
            folder, output, seriesUid,
        };
        command.SetAction(parse => Run(() =>
        {
            var series = BuildSeries(parse.GetValue(folder)!, parse.GetValue(seriesUid));
            NiftiWriter.WriteFile(series.Volume, parse.GetValue(output)!);
            Console.Out.WriteLine(series.Summary);
            return ExitCodes.Ok;
        }));
        return command.WithExamples(
            "orthancseg convert series ./ct-series/ ct.nii.gz",
            "orthancseg convert series ./mixed/ ct.nii.gz --series-uid 1.2.826.0.1.3680043.8.498.1");
    }

    private static Command SegCommand()
    {
        var seg = new Argument<string>("seg.dcm") { Description = "The DICOM SEG file (BINARY, FRACTIONAL or LABELMAP)" };
        var output = new Argument<string>("out.nii.gz") { Description = "Label map to write, uint8 on the series grid" };
        var folder = new Option<string>("--series") { Description = "Folder with the DICOM series the SEG segments", Required = true };
        var labels = new Option<string>("--labels") { Description = "Segment name → label value, e.g. liver=1,tumor=2 (names case-insensitive)", Required = true };
        var seriesUid = SeriesUidOption();
        var command = new Command("seg", "Rasterise a DICOM SEG onto its series' grid and write the label map as NIfTI")
        {
            seg, output, folder, labels, seriesUid,
        };
        command.SetAction(parse => Run(() =>
        {
            var mapping = ParseLabels(parse.GetValue(labels)!);
            var series = BuildSeries(parse.GetValue(folder)!, parse.GetValue(seriesUid));
            var result = SegmentationReader.Read(DicomReader.ReadFile(parse.GetValue(seg)!), series.Grid, mapping);
            NiftiWriter.WriteFile(result.LabelMap, parse.GetValue(output)!);
            foreach (var segment in result.Segments)
            {
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"segment {segment.Segment.Number} '{segment.Segment.Label}' → {segment.Value}: {segment.VoxelCount} voxels on {segment.Slices.Count} slice(s)"));
            }
            Warn(result.Warnings);
            return ExitCodes.Ok;
        }));
        return command.WithExamples(
            "orthancseg convert seg seg.dcm --series ./ct-series/ --labels liver=1,tumor=2 labels.nii.gz");
    }

    private static Command LabelsCommand()
    {
        var input = new Argument<string>("labels.nii.gz") { Description = "Label map (NIfTI, integer values) on the series grid" };
        var output = new Argument<string>("out-seg.dcm") { Description = "DICOM SEG file to write (BINARY)" };
        var folder = new Option<string>("--series") { Description = "Folder with the DICOM series the labels were made on", Required = true };
        var labels = new Option<string>("--labels") { Description = "Segment name ← label value, e.g. liver=1,tumor=2", Required = true };
        var algorithm = new Option<string?>("--algorithm") { Description = "Algorithm (model) name; makes the segments AUTOMATIC (default MANUAL)" };
        var description = new Option<string?>("--series-description") { Description = "SeriesDescription of the SEG (default: \"Segmentation by ALGORITHM\" with --algorithm, else \"Segmentation\")" };
        var seriesUid = SeriesUidOption();
        var command = new Command("labels", "Write a NIfTI label map on a series' grid as a DICOM SEG referencing that series")
        {
            input, output, folder, labels, algorithm, description, seriesUid,
        };
        command.SetAction(parse => Run(() =>
        {
            var mapping = ParseLabels(parse.GetValue(labels)!);
            var series = BuildSeries(parse.GetValue(folder)!, parse.GetValue(seriesUid), out var sources);
            var image = NiftiReader.ReadFile(parse.GetValue(input)!);
            var labelMap = NiftiLabelMap.OnGrid(image, series.Grid.Geometry, "The label map");
            var name = parse.GetValue(algorithm);
            var options = new SegmentationWriterOptions(
                name is null ? SegmentAlgorithmType.Manual : SegmentAlgorithmType.Automatic, name, parse.GetValue(description));
            var result = SegmentationWriter.Write(labelMap, sources, mapping.Labels.Select(l => new SegmentDefinition(l.Value, l.Key)), options);
            if (!result.Written)
            {
                Console.Error.WriteLine($"orthancseg: no SEG written: {result.NotWrittenReason}");
                return ExitCodes.NothingWritten;
            }
            File.WriteAllBytes(parse.GetValue(output)!, DicomWriter.ToBytes(DicomFile.Create(result.Segmentation!)));
            foreach (var segment in result.Segments)
            {
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"segment {segment.Number} '{segment.Label}' ← {segment.Value}: {segment.VoxelCount} voxels in {segment.FrameCount} frame(s)"));
            }
            return ExitCodes.Ok;
        }));
        return command.WithExamples(
            "orthancseg convert labels labels.nii.gz --series ./ct-series/ --labels liver=1,tumor=2 seg.dcm",
            "orthancseg convert labels pred.nii.gz --series ./ct-series/ --labels liver=1 --algorithm nnU-Net seg.dcm");
    }

    private static SeriesVolume BuildSeries(string folder, string? seriesUid) => BuildSeries(folder, seriesUid, out _);

    private static SeriesVolume BuildSeries(string folder, string? seriesUid, out List<DicomDataset> sources)
    {
        var notes = new List<string>();
        var files = SeriesFolder.ReadSeries(folder, seriesUid, notes);
        var series = SeriesVolumeBuilder.Build(files);
        var used = series.SopInstanceUids.ToHashSet(StringComparer.Ordinal);
        sources = files.Select(f => f.Dataset).Where(d => used.Contains(d.GetString(DicomTags.SOPInstanceUID) ?? "")).ToList();
        Warn(notes.Concat(series.Warnings));
        return series;
    }

    private static SegmentMapping ParseLabels(string text)
    {
        try
        {
            return SegmentMapping.Parse(text);
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw new DicomException($"--labels: {e.Message}", e);
        }
    }

    private static void Warn(IEnumerable<string> warnings)
    {
        foreach (var warning in warnings)
        {
            Console.Error.WriteLine($"orthancseg: note: {warning}");
        }
    }

    private static int Run(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is DicomException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"orthancseg: {e.Message}");
            return ExitCodes.Unhealthy;
        }
    }
}
