using System.Globalization;
using OrthancSeg.Dicom;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Worker.Labels;

/// <summary>One segment a SEG declares.</summary>
internal sealed record SegmentInfo(int Number, string Label, string? AlgorithmType);

/// <summary>One frame of a SEG: where it goes and which segments it paints.</summary>
internal sealed record SegmentationFrame(int Index, int? SegmentNumber, string? ReferencedSopInstanceUid, Vector3D? Position, IReadOnlySet<int> PaintedSegments);

/// <summary>
/// What a label needs from a DICOM SEG: its identity, the series it references, its segments and, per frame,
/// the referenced source slice and which segments have at least one voxel. Reads BINARY (1 bit),
/// FRACTIONAL (8 bit) and LABELMAP (8/16 bit, pixel value = segment number) pixel data, native or RLE
/// (what OHIF stores); other compressed files must be transcoded first (Orthanc does that for the worker).
/// </summary>
internal sealed record SegmentationContent(
    string SopInstanceUid,
    string SopClassUid,
    string SegmentationType,
    IReadOnlyList<string> ReferencedSeriesInstanceUids,
    IReadOnlyList<string> ReferencedSopInstanceUids,
    string? FrameOfReferenceUid,
    string? Author,
    DateTimeOffset? ContentTime,
    int Rows,
    int Columns,
    IReadOnlyList<double>? Orientation,
    IReadOnlyList<SegmentInfo> Segments,
    IReadOnlyList<SegmentationFrame> Frames)
{
    /// <summary>Parses a SEG; throws <see cref="DicomException"/> with a reason a person can act on when it is not a usable SEG.</summary>
    public static SegmentationContent Parse(DicomFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        var ds = file.Dataset;
        var sopClass = ds.GetString(DicomTags.SOPClassUID) ?? throw new DicomException("the file has no SOPClassUID");
        if (!SopClasses.IsSegmentation(sopClass))
        {
            throw new DicomException($"SOP Class {sopClass} is not a segmentation (expected {SopClasses.Segmentation} or {SopClasses.LabelMapSegmentation})");
        }
        var sopInstanceUid = ds.GetString(DicomTags.SOPInstanceUID) ?? throw new DicomException("the SEG has no SOPInstanceUID");
        var type = ds.GetString(DicomTags.SegmentationType)?.ToUpperInvariant()
            ?? (sopClass == SopClasses.LabelMapSegmentation ? "LABELMAP" : throw new DicomException("the SEG has no SegmentationType"));
        var rows = ds.GetInt(DicomTags.Rows) ?? throw new DicomException("the SEG has no Rows");
        var columns = ds.GetInt(DicomTags.Columns) ?? throw new DicomException("the SEG has no Columns");
        if (rows <= 0 || columns <= 0)
        {
            throw new DicomException($"the SEG has an empty frame size {rows} × {columns}");
        }

        var referencedSeries = new List<string>();
        var referencedInstances = new List<string>();
        foreach (var series in ds.GetSequence(DicomTags.ReferencedSeriesSequence))
        {
            if (series.GetString(DicomTags.SeriesInstanceUID) is { } uid)
            {
                referencedSeries.Add(uid);
            }
            referencedInstances.AddRange(series.GetSequence(DicomTags.ReferencedInstanceSequence)
                .Select(i => i.GetString(DicomTags.ReferencedSOPInstanceUID)).OfType<string>());
        }

        var segments = ds.GetSequence(DicomTags.SegmentSequence)
            .Select(s => new SegmentInfo(
                s.GetInt(DicomTags.SegmentNumber) ?? throw new DicomException("a segment of the SEG has no SegmentNumber"),
                s.GetString(DicomTags.SegmentLabel) ?? string.Empty,
                s.GetString(DicomTags.SegmentAlgorithmType)))
            .ToList();

        var shared = ds.GetFirstItem(DicomTags.SharedFunctionalGroupsSequence);
        var orientation = OrientationOf(shared);
        var perFrame = ds.GetSequence(DicomTags.PerFrameFunctionalGroupsSequence);
        var frameCount = ds.GetInt(DicomTags.NumberOfFrames) ?? perFrame.Count;
        orientation ??= perFrame.Count > 0 ? OrientationOf(perFrame[0]) : null;

        var painted = PaintedSegmentsPerFrame(file, type);
        if (painted.Count != frameCount)
        {
            throw new DicomException($"NumberOfFrames says {frameCount} but the pixel data holds {painted.Count} frames");
        }
        var frames = new List<SegmentationFrame>(frameCount);
        for (var f = 0; f < frameCount; f++)
        {
            var group = f < perFrame.Count ? perFrame[f] : null;
            var segmentNumber = group?.GetFirstItem(DicomTags.SegmentIdentificationSequence)?.GetInt(DicomTags.ReferencedSegmentNumber)
                ?? shared?.GetFirstItem(DicomTags.SegmentIdentificationSequence)?.GetInt(DicomTags.ReferencedSegmentNumber);
            var source = group?.GetSequence(DicomTags.DerivationImageSequence)
                .SelectMany(d => d.GetSequence(DicomTags.SourceImageSequence))
                .Select(s => s.GetString(DicomTags.ReferencedSOPInstanceUID))
                .FirstOrDefault(u => u is not null);
            var position = group?.GetFirstItem(DicomTags.PlanePositionSequence)?.GetDoubles(DicomTags.ImagePositionPatient) is { Length: 3 } p
                ? new Vector3D(p[0], p[1], p[2])
                : (Vector3D?)null;
            IReadOnlySet<int> paintedHere = type == "LABELMAP"
                ? painted[f]
                : painted[f].Count > 0 && segmentNumber is { } n ? new HashSet<int> { n } : new HashSet<int>();
            frames.Add(new SegmentationFrame(f, segmentNumber, source, position, paintedHere));
        }

        return new SegmentationContent(sopInstanceUid, sopClass, type, referencedSeries, referencedInstances,
            ds.GetString(DicomTags.FrameOfReferenceUID), ds.GetString(DicomTags.ContentCreatorName),
            ContentTimeOf(ds), rows, columns, orientation, segments, frames);
    }

    private static double[]? OrientationOf(DicomDataset? group) =>
        group?.GetFirstItem(DicomTags.PlaneOrientationSequence)?.GetDoubles(DicomTags.ImageOrientationPatient) is { Length: 6 } o ? o : null;

    /// <summary>For each frame, the pixel values other than 0 (BINARY/FRACTIONAL: {1} when anything is set).</summary>
    private static List<HashSet<int>> PaintedSegmentsPerFrame(DicomFile file, string type)
    {
        var pixels = DicomPixelData.Create(file.Dataset, file.TransferSyntaxUid);
        var packing = pixels.BitsAllocated == 1 ? pixels.GuessBitPacking() : BitPacking.Contiguous;
        if (type == "LABELMAP" && pixels.BitsAllocated is not (8 or 16))
        {
            throw new DicomException($"a LABELMAP SEG with BitsAllocated {pixels.BitsAllocated} is not one the worker reads (8 or 16)");
        }
        var result = new List<HashSet<int>>(pixels.FrameCount);
        for (var f = 0; f < pixels.FrameCount; f++)
        {
            var frame = pixels.GetFrame(f, packing).Span;
            if (type != "LABELMAP")
            {
                result.Add(frame.ContainsAnyExcept((byte)0) ? [1] : []);
                continue;
            }
            var set = new HashSet<int>();
            if (pixels.BitsAllocated == 8)
            {
                foreach (var b in frame)
                {
                    if (b != 0)
                    {
                        set.Add(b);
                    }
                }
            }
            else
            {
                for (var i = 0; i + 1 < frame.Length; i += 2)
                {
                    var v = frame[i] | (frame[i + 1] << 8);
                    if (v != 0)
                    {
                        set.Add(v);
                    }
                }
            }
            result.Add(set);
        }
        return result;
    }

    /// <summary>
    /// When the SEG says it was made. DICOM dates carry no zone; the value is kept as if UTC because it only
    /// orders the labels of one case ("newest accepted manual label is current").
    /// </summary>
    private static DateTimeOffset? ContentTimeOf(DicomDataset ds)
    {
        var (date, time) = ds.GetString(DicomTags.ContentDate) is { } cd
            ? (cd, ds.GetString(DicomTags.ContentTime))
            : (ds.GetString(DicomTags.SeriesDate), ds.GetString(DicomTags.SeriesTime));
        if (date is null || !DateTime.TryParseExact(date, "yyyyMMdd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day))
        {
            return null;
        }
        var clock = TimeSpan.Zero;
        if (time is { Length: >= 2 })
        {
            var parts = time.Split('.');
            var digits = parts[0].PadRight(6, '0');
            if (int.TryParse(digits.AsSpan(0, 2), CultureInfo.InvariantCulture, out var h)
                && int.TryParse(digits.AsSpan(2, 2), CultureInfo.InvariantCulture, out var m)
                && int.TryParse(digits.AsSpan(4, 2), CultureInfo.InvariantCulture, out var s)
                && h < 24 && m < 60 && s < 61)
            {
                clock = new TimeSpan(h, m, Math.Min(s, 59));
                // Two saves within one second are ordered by the fraction (OHIF writes microseconds).
                if (parts.Length > 1 && parts[1].Length > 0 && parts[1].All(char.IsAsciiDigit))
                {
                    var fraction = parts[1].Length > 6 ? parts[1][..6] : parts[1].PadRight(6, '0');
                    clock += TimeSpan.FromTicks(int.Parse(fraction, CultureInfo.InvariantCulture) * 10L);
                }
            }
        }
        return new DateTimeOffset(DateTime.SpecifyKind(day + clock, DateTimeKind.Utc));
    }
}
