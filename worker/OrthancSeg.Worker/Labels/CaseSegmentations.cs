using System.Diagnostics;
using System.Globalization;
using System.Numerics;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using OrthancSeg.Dicom;
using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Dicom.Volumes;
using OrthancSeg.Worker.Cases;
using OrthancSeg.Worker.Datasets;
using OrthancSeg.Worker.Orthanc;
using OrthancSeg.Worker.Workflows;

namespace OrthancSeg.Worker.Labels;

/// <summary>
/// A case's series as fetched from Orthanc: its volume (and grid) and the image data sets a SEG references; the DICOM bytes and
/// instances fetched and how long the fetch took (the volume's build not included), for the transfer's throughput.
/// </summary>
internal sealed record CaseImage(SeriesVolume Series, IReadOnlyList<DicomDataset> Sources, long Bytes, int Instances, long FetchMs)
{
    public VolumeGeometry Grid => Series.Grid.Geometry;
}

/// <summary>A SEG written from a label map and stored in Orthanc.</summary>
internal sealed record StoredSegmentation(string SopInstanceUid, string OrthancInstanceId, IReadOnlyList<WrittenSegment> Segments, IReadOnlyList<int> PaintedSlices);

/// <summary>
/// Label maps on a case's grid going back to the PACS, for inference (a model's prediction) and import (a map drawn in another tool) alike:
/// the case's series fetched as the dataset export fetches it, the label map written as a BINARY SEG with the workflow's segment names and
/// colours, stored in Orthanc (so in the case's study, since the SEG copies the study's identity), and described as the label it is.
/// </summary>
internal sealed class CaseSegmentations(OrthancInstances instances, OrthancClient orthanc, IOptions<DatasetOptions> datasetOptions)
{
    /// <summary>The case's series: every instance, built into a volume as the dataset export builds it.</summary>
    public async Task<CaseImage> FetchImageAsync(CaseRecord caseRecord, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var fetched = await instances.FetchSeriesAsync(caseRecord.OrthancSeriesId, datasetOptions.Value.RequestsPerSeries, cancellationToken);
        var fetchMs = clock.ElapsedMilliseconds;
        var series = SeriesVolumeBuilder.Build(fetched.Files, instances.Limits);
        var used = series.SopInstanceUids.ToHashSet(StringComparer.Ordinal);
        var sources = fetched.Files.Select(f => f.Dataset).Where(d => used.Contains(d.GetString(DicomTags.SOPInstanceUID) ?? "")).ToList();
        return new CaseImage(series, sources, fetched.Bytes, fetched.Files.Count, fetchMs);
    }

    /// <summary>
    /// One segment per workflow label: its name, its code as the segmented property type and its colour when the workflow gives them
    /// (else the writer's known structures and palette). Workflow codes and colours are checked when the workflow is written.
    /// </summary>
    public static IReadOnlyList<SegmentDefinition> Segments(Workflow workflow) =>
        [.. workflow.Labels.Select(l => new SegmentDefinition((byte)l.Value, l.Name,
            Type: string.IsNullOrWhiteSpace(l.Code) ? null : CodedConcept.Parse(l.Code),
            Colour: string.IsNullOrWhiteSpace(l.Colour) ? null : CieLabColour.FromHex(l.Colour)))];

    /// <summary>
    /// Writes the SEG and stores it. Null when the label map holds no labelled voxel (nothing is stored: an empty SEG is not valid). With
    /// <paramref name="uidSeed"/>, the SEG's series and instance UIDs derive from it, so a retried attempt stores the same instance again
    /// (Orthanc keeps the first) instead of a second copy.
    /// </summary>
    public async Task<StoredSegmentation?> StoreAsync(CaseImage image, Volume labelMap, Workflow workflow, SegmentationWriterOptions options, string? uidSeed,
        CancellationToken cancellationToken)
    {
        var result = SegmentationWriter.Write(labelMap, image.Sources, Segments(workflow), options);
        if (result.Segmentation is not { } seg)
        {
            return null;
        }
        if (uidSeed is not null)
        {
            seg.SetString(DicomTags.SeriesInstanceUID, DicomVR.UI, DerivedUid(uidSeed + "/series"));
            seg.SetString(DicomTags.SOPInstanceUID, DicomVR.UI, DerivedUid(uidSeed + "/instance"));
        }
        var sopInstanceUid = seg.GetString(DicomTags.SOPInstanceUID)!;
        var upload = await orthanc.UploadAsync(DicomWriter.ToBytes(DicomFile.Create(seg)), cancellationToken);
        return new StoredSegmentation(sopInstanceUid, upload.Id, result.Segments, PaintedSlices(labelMap));
    }

    /// <summary>The label as recorded: each written segment under its workflow name, and the slices with a labelled voxel.</summary>
    public static WrittenLabel Label(long caseId, StoredSegmentation stored, string source, string verdict, string? author) =>
        new(caseId, stored.SopInstanceUid, stored.OrthancInstanceId, source, verdict, author,
            [.. stored.Segments.Select(s => new SegmentMapping(s.Number, s.Label, s.Value, s.Label, SegmentMatch.Name, s.FrameCount))],
            stored.PaintedSlices);

    /// <summary>A text cut to the 64 characters a DICOM LO value holds (series and content descriptions).</summary>
    public static string LongString(string value) => value.Length <= 64 ? value : value[..64];

    public static bool HasLabels(Volume labelMap) => labelMap.Data.AsSpan().IndexOfAnyExcept((byte)0) >= 0;

    private static List<int> PaintedSlices(Volume labelMap) =>
        [.. Enumerable.Range(0, labelMap.Geometry.Slices).Where(k => labelMap.SliceBytes(k).IndexOfAnyExcept((byte)0) >= 0)];

    /// <summary>A UID under 2.25 from the first 128 bits of the seed's SHA-256 (PS3.5 B.2, as a name-based UUID is derived).</summary>
    internal static string DerivedUid(string seed)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(seed));
        return "2.25." + new BigInteger(hash.AsSpan(0, 16), isUnsigned: true, isBigEndian: true).ToString(CultureInfo.InvariantCulture);
    }
}
