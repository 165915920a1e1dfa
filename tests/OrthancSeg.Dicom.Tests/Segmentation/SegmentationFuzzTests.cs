using System.Diagnostics;
using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Dicom.Volumes;
using OrthancSeg.Tests.Support;
using Xunit.Abstractions;

namespace OrthancSeg.Dicom.Tests.Segmentation;

/// <summary>
/// The hostile SEG corpus (the one the integration test uploads to Orthanc) read the way the worker reads it: describe, then
/// place on the series. Whatever is wrong must end in a <see cref="DicomException"/> saying so, never another exception, and
/// never an allocation driven by what the file declares. Seeded, so a failure reproduces.
/// </summary>
public sealed class SegmentationFuzzTests(ITestOutputHelper output)
{
    private static readonly SegmentMapping Mapping = SegmentMapping.Parse("liver=1,tumor=2");

    [Fact]
    public void Hostile_segs_are_read_or_refused_with_a_reason_never_with_another_exception()
    {
        var stopwatch = Stopwatch.StartNew();
        var series = Enumerable.Range(0, 3).Select(_ => new TestSeries(slices: 4)).ToList();
        var grids = series.ToDictionary(s => s.SeriesInstanceUid, s => SeriesVolumeBuilder.Build(s.Files()).Grid);
        var failures = new List<string>();
        var outcomes = new Dictionary<string, int>();
        var i = 0;
        foreach (var seg in HostileSegs.Generate(series, 3000, seed: 20261204))
        {
            var outcome = Exercise(seg, grids[series[i++ % series.Count].SeriesInstanceUid], failures);
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
        }

        output.WriteLine(string.Join(", ", outcomes.Select(o => $"{o.Key}: {o.Value}")));
        Assert.True(failures.Count == 0, string.Join('\n', failures.Take(20)));
        // The corpus must both break SEGs in every way and leave some readable, or it proves nothing.
        Assert.True(outcomes.GetValueOrDefault("refused by the reader") > 1000, string.Join(", ", outcomes));
        Assert.True(outcomes.GetValueOrDefault("read") > 100, string.Join(", ", outcomes));
        Assert.True(outcomes.GetValueOrDefault("not DICOM") > 10, string.Join(", ", outcomes));
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(60), $"took {stopwatch.Elapsed}");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void NumberOfFrames_2147483647_is_refused_before_anything_is_allocated_for_the_frames(bool labelMap)
    {
        var series = new TestSeries(slices: 4);
        var seg = series.Seg([new(1, "liver")], [new(1, 1)], labelMap: labelMap);
        seg.Dataset.SetString(DicomTags.NumberOfFrames, DicomVR.IS, "2147483647");
        var file = DicomReader.Read(DicomWriter.ToBytes(seg));
        var grid = SeriesVolumeBuilder.Build(series.Files()).Grid;
        var before = GC.GetAllocatedBytesForCurrentThread();

        var described = Assert.Throws<DicomException>(() => SegmentationReader.Describe(file));
        var read = Assert.Throws<DicomException>(() => SegmentationReader.Read(file, grid, Mapping));

        Assert.Contains("2147483647", described.Message, StringComparison.Ordinal);
        Assert.Contains("2147483647", read.Message, StringComparison.Ordinal);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20);
    }

    [Fact]
    public void A_zero_orientation_is_refused_with_a_reason()
    {
        var series = new TestSeries(slices: 4);
        var seg = series.Seg([new(1, "liver")], [new(1, 1)]);
        seg.Dataset.GetFirstItem(DicomTags.SharedFunctionalGroupsSequence)!.GetFirstItem(DicomTags.PlaneOrientationSequence)!
            .SetString(DicomTags.ImageOrientationPatient, DicomVR.DS, "0\\0\\0\\0\\0\\0");

        var error = Assert.Throws<DicomException>(() => SegmentationReader.Read(seg, SeriesVolumeBuilder.Build(series.Files()).Grid, Mapping));

        Assert.Contains("not two directions", error.Message, StringComparison.Ordinal);
    }

    private static string Exercise(HostileSeg seg, SeriesGrid grid, List<string> failures)
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        var outcome = "read";
        DicomFile file;
        try
        {
            file = DicomReader.Read(seg.Bytes);
        }
        catch (DicomException)
        {
            return "not DICOM";
        }
        try
        {
            var description = SegmentationReader.Describe(file);
            _ = description.ContentTime;
            SegmentationReader.Read(file, grid, Mapping);
        }
        catch (DicomException e) when (e.Message.Length > 0)
        {
            outcome = "refused by the reader";
        }
        catch (Exception e)
        {
            failures.Add($"{seg.Mutation}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
        }
        // The label map of this small grid, decoded frames and bookkeeping: never what a forged count or size asks for.
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        if (allocated > (16L << 20) + (20L * seg.Bytes.Length))
        {
            failures.Add($"{seg.Mutation}: allocated {allocated} bytes for a {seg.Bytes.Length}-byte SEG");
        }
        return outcome;
    }
}
