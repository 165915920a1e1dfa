using System.Globalization;

namespace OrthancSeg.Dicom.Segmentation;

/// <summary>
/// What a SEG says about itself before it is placed on any series: identity, what it references, who made it and when,
/// its frame size and count, and its segments. <see cref="SegmentationReader.Describe"/> gives it; the text values are
/// the file's own (trimmed), so a consumer that stores them decides how to make them safe.
/// </summary>
/// <param name="SegmentationType">BINARY, FRACTIONAL or LABELMAP.</param>
/// <param name="ReferencedSopInstanceUids">
/// Instances the SEG references: ReferencedSeriesSequence's ReferencedInstanceSequence and every frame's source images, distinct.
/// </param>
/// <param name="ContentTime">ContentDate/ContentTime (else SeriesDate/SeriesTime), read as UTC: DICOM dates carry no zone.</param>
public sealed record SegmentationDescription(
    string SopInstanceUid,
    string SopClassUid,
    string SegmentationType,
    IReadOnlyList<string> ReferencedSeriesInstanceUids,
    IReadOnlyList<string> ReferencedSopInstanceUids,
    string? FrameOfReferenceUid,
    string? ContentCreatorName,
    DateTimeOffset? ContentTime,
    int Rows,
    int Columns,
    int FrameCount,
    IReadOnlyList<SegmentInfo> Segments)
{
    /// <summary>
    /// When the SEG says it was made. Only orders the labels of one case ("newest accepted manual label is current"), so a date
    /// without a zone is taken as UTC, and a date or time that does not parse is no time rather than a refusal.
    /// </summary>
    internal static DateTimeOffset? ContentTimeOf(DicomDataset ds)
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
            if (digits.Length >= 6
                && int.TryParse(digits.AsSpan(0, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var h)
                && int.TryParse(digits.AsSpan(2, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var m)
                && int.TryParse(digits.AsSpan(4, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var s)
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
