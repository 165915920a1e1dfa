using System.Globalization;
using OrthancSeg.Dicom;

namespace OrthancSeg.Tests.Support;

/// <summary>One SEG of the hostile corpus: what was done to it, and the Part 10 bytes to upload or read.</summary>
internal sealed record HostileSeg(string Mutation, string Kind, byte[] Bytes);

/// <summary>
/// Mutations of valid BINARY and LABELMAP SEGs on a <see cref="TestSeries"/>, as a careless or hostile writer would make
/// them: absurd frame counts, sizes and bit depths, inconsistent frame tables, missing or wrong references, NaN and infinite
/// positions, zero spacing and orientation, damaged, short or empty pixel data, control characters and overlong strings in
/// every text the worker reads, sequences nested up to 40 levels (Orthanc 1.10.1 itself crashes at 50 over HTTP). Seeded,
/// so a failure reproduces; every SEG gets its own SOPInstanceUID.
/// </summary>
internal static class HostileSegs
{
    /// <summary>(0040,A730): an SR attribute any data set may carry, and the one that crashes Orthanc when nested 50 deep.</summary>
    private static readonly DicomTag ContentSequence = new(0x0040, 0xA730);

    /// <summary>Characters PostgreSQL, terminals or JSON choke on, and a few that are merely odd.</summary>
    private static readonly string[] Nasty = ["\0", "\u0001", "\u0007", "\b", "\t", "\n", "\r", "\u001b[31m", "\u007f", "\u0085", "\u2028", "\ufffe", "\\", "'", "\"", "%s", "\u00e9", "\ud83d\ude00"];

    private static readonly string[] TextKinds =
    [
        "SegmentLabel", "ContentCreatorName", "SegmentAlgorithmType", "SegmentAlgorithmName", "SegmentDescription", "SeriesDescription",
        "SegmentationType", "ContentDate", "ContentTime", "FrameOfReferenceUID", "ReferencedSeriesUID", "ReferencedSOPInstanceUID",
        "SourceImageUID", "SOPInstanceUID",
    ];

    /// <summary>The mutation families, in the order <see cref="Generate"/> cycles through them.</summary>
    public static readonly IReadOnlyList<string> Kinds =
    [
        "frames", "size", "bits", "samples", "frame-table", "segment-ids", "references", "positions", "orientation", "spacing",
        "pixels", "text", "segments", "labelmap-values", "nesting", "type", "bytes", "valid",
    ];

    public static IEnumerable<HostileSeg> Generate(IReadOnlyList<TestSeries> series, int count, int seed)
    {
        var random = new Random(seed);
        for (var i = 0; i < count; i++)
        {
            var target = series[i % series.Count];
            var kind = Kinds[i % Kinds.Count];
            var labelMap = random.Next(2) == 0;
            // Slices 0..2 exist in every series of the corpus; two segments so that frame tables have something to confuse.
            var seg = target.Seg([new(1, "liver"), new(2, "tumor")], [new(random.Next(3), 1), new(random.Next(3), 2)], labelMap: labelMap, author: "Doe^Jane");
            string mutation;
            byte[] bytes;
            if (kind == "bytes")
            {
                bytes = DicomWriter.ToBytes(seg);
                mutation = FlipBytes(bytes, random);
            }
            else
            {
                mutation = Mutate(seg, kind, random);
                bytes = DicomWriter.ToBytes(seg);
            }
            yield return new HostileSeg($"{(labelMap ? "LABELMAP" : "BINARY")} {kind}: {mutation}", kind, bytes);
        }
    }

    private static string Mutate(DicomFile seg, string kind, Random random)
    {
        var ds = seg.Dataset;
        var perFrame = ds.GetSequence(DicomTags.PerFrameFunctionalGroupsSequence);
        var shared = ds.GetFirstItem(DicomTags.SharedFunctionalGroupsSequence)!;
        switch (kind)
        {
            case "frames":
            {
                string[] values = ["2147483647", "2147483646", "65536", "262145", "1000000", "0", "-1", "3", "1", "1.5", "NaN", "abc", ""];
                var value = Pick(values, random);
                ds.SetString(DicomTags.NumberOfFrames, DicomVR.IS, value);
                return $"NumberOfFrames '{value}'";
            }
            case "size":
            {
                ushort[] values = [0, 1, 7, 9, 255, 4096, 65535];
                var (rows, columns) = (Pick(values, random), Pick(values, random));
                ds.SetUInt16(DicomTags.Rows, rows);
                ds.SetUInt16(DicomTags.Columns, columns);
                return $"Rows×Columns {rows}×{columns}";
            }
            case "bits":
            {
                ushort[] values = [0, 2, 7, 12, 16, 32, 64, 65535];
                var bits = Pick(values, random);
                ds.SetUInt16(DicomTags.BitsAllocated, bits);
                if (random.Next(2) == 0)
                {
                    ds.SetUInt16(DicomTags.BitsStored, (ushort)(bits + 1));
                }
                return $"BitsAllocated {bits}";
            }
            case "samples":
                ds.SetUInt16(DicomTags.SamplesPerPixel, (ushort)random.Next(0, 5));
                ds.SetString(DicomTags.PhotometricInterpretation, DicomVR.CS, Pick(["RGB", "YBR_FULL_422", "PALETTE COLOR", ""], random));
                return "SamplesPerPixel / PhotometricInterpretation changed";
            case "frame-table":
                switch (random.Next(4))
                {
                    case 0:
                        ds.SetSequence(DicomTags.PerFrameFunctionalGroupsSequence, [.. perFrame.Take(perFrame.Count - 1)]);
                        return "one per-frame item fewer than frames";
                    case 1:
                        ds.SetSequence(DicomTags.PerFrameFunctionalGroupsSequence, [.. perFrame, .. perFrame, .. perFrame]);
                        return "per-frame items tripled";
                    case 2:
                        ds.Remove(DicomTags.PerFrameFunctionalGroupsSequence);
                        return "no per-frame functional groups";
                    default:
                        ds.SetSequence(DicomTags.PerFrameFunctionalGroupsSequence, [.. Enumerable.Repeat(new DicomDataset(), perFrame.Count)]);
                        return "empty per-frame items";
                }
            case "segment-ids":
            {
                ushort[] values = [0, 3, 99, 65535];
                var value = Pick(values, random);
                foreach (var frame in perFrame)
                {
                    frame.SetSequence(DicomTags.SegmentIdentificationSequence, new DicomDataset().SetUInt16(DicomTags.ReferencedSegmentNumber, value));
                }
                return $"every frame names segment {value}";
            }
            case "references":
                switch (random.Next(5))
                {
                    case 0:
                        foreach (var frame in perFrame)
                        {
                            frame.Remove(DicomTags.DerivationImageSequence);
                        }
                        return "no source image references (placed by position)";
                    case 1:
                        foreach (var frame in perFrame)
                        {
                            frame.GetFirstItem(DicomTags.DerivationImageSequence)!.GetFirstItem(DicomTags.SourceImageSequence)!
                                .SetString(DicomTags.ReferencedSOPInstanceUID, DicomVR.UI, Implementation.NewUid());
                        }
                        return "frames reference unknown instances";
                    case 2:
                        ds.GetFirstItem(DicomTags.ReferencedSeriesSequence)!.SetString(DicomTags.SeriesInstanceUID, DicomVR.UI, Implementation.NewUid());
                        foreach (var frame in perFrame)
                        {
                            frame.Remove(DicomTags.DerivationImageSequence);
                        }
                        ds.GetFirstItem(DicomTags.ReferencedSeriesSequence)!.Remove(DicomTags.ReferencedInstanceSequence);
                        return "references a series that is not in Orthanc";
                    case 3:
                        ds.Remove(DicomTags.ReferencedSeriesSequence);
                        foreach (var frame in perFrame)
                        {
                            frame.Remove(DicomTags.DerivationImageSequence);
                        }
                        return "references nothing at all";
                    default:
                        ds.Remove(DicomTags.ReferencedSeriesSequence);
                        return "no ReferencedSeriesSequence, frames still reference instances";
                }
            case "positions":
            {
                string[] values = ["NaN\\NaN\\NaN", "Infinity\\0\\0", "-Infinity\\1\\2", "1e308\\1e308\\1e308", "0\\0", "a\\b\\c", "-10\\-10\\1e9"];
                var value = Pick(values, random);
                foreach (var frame in perFrame)
                {
                    frame.Remove(DicomTags.DerivationImageSequence);
                    frame.GetFirstItem(DicomTags.PlanePositionSequence)!.SetString(DicomTags.ImagePositionPatient, DicomVR.DS, value);
                }
                return $"ImagePositionPatient '{value}' and no references";
            }
            case "orientation":
            {
                string[] values = ["0\\0\\0\\0\\0\\0", "NaN\\0\\0\\0\\1\\0", "1\\0\\0\\1\\0\\0", "0.7071\\0.7071\\0\\0\\0\\1", "Infinity\\0\\0\\0\\1\\0", "1\\0\\0"];
                var value = Pick(values, random);
                shared.GetFirstItem(DicomTags.PlaneOrientationSequence)!.SetString(DicomTags.ImageOrientationPatient, DicomVR.DS, value);
                return $"ImageOrientationPatient '{value}'";
            }
            case "spacing":
            {
                string[] values = ["0\\0", "-1\\-1", "NaN\\NaN", "1e-300\\1e300"];
                var value = Pick(values, random);
                var measures = shared.GetFirstItem(DicomTags.PixelMeasuresSequence)!;
                measures.SetString(DicomTags.PixelSpacing, DicomVR.DS, value);
                measures.SetString(DicomTags.SliceThickness, DicomVR.DS, "0");
                return $"PixelSpacing '{value}', SliceThickness 0";
            }
            case "pixels":
            {
                var data = ds[DicomTags.PixelData]!.Value.ToArray();
                switch (random.Next(5))
                {
                    case 0:
                        ds.SetBytes(DicomTags.PixelData, DicomVR.OB, data.AsMemory(0, data.Length / 2));
                        return "pixel data cut in half";
                    case 1:
                        ds.SetBytes(DicomTags.PixelData, DicomVR.OB, ReadOnlyMemory<byte>.Empty);
                        return "empty pixel data";
                    case 2:
                        ds.Remove(DicomTags.PixelData);
                        return "no pixel data";
                    case 3:
                        random.NextBytes(data);
                        ds.SetBytes(DicomTags.PixelData, DicomVR.OB, data);
                        return "random pixel data";
                    default:
                        ds.SetBytes(DicomTags.PixelData, DicomVR.OB, data.Concat(new byte[4096]).ToArray());
                        return "4 KB of extra pixel data";
                }
            }
            case "text":
            {
                var which = Pick(TextKinds, random);
                var text = NastyText(random);
                SetText(ds, perFrame, which, text);
                return $"{which} holds control characters or is overlong ({text.Length} characters)";
            }
            case "segments":
                switch (random.Next(5))
                {
                    case 0:
                        ds.SetSequence(DicomTags.SegmentSequence);
                        return "empty SegmentSequence";
                    case 1:
                        ds.SetSequence(DicomTags.SegmentSequence, [.. Enumerable.Range(1, 1000).Select(n => new DicomDataset()
                            .SetUInt16(DicomTags.SegmentNumber, (ushort)n).SetString(DicomTags.SegmentLabel, DicomVR.LO, $"liver {n}"))]);
                        return "1,000 segments";
                    case 2:
                        foreach (var item in ds.GetSequence(DicomTags.SegmentSequence))
                        {
                            item.SetUInt16(DicomTags.SegmentNumber, 1);
                        }
                        return "every segment is number 1";
                    case 3:
                        foreach (var item in ds.GetSequence(DicomTags.SegmentSequence))
                        {
                            item.Remove(DicomTags.SegmentNumber);
                        }
                        return "segments without SegmentNumber";
                    default:
                        foreach (var item in ds.GetSequence(DicomTags.SegmentSequence))
                        {
                            item.SetString(DicomTags.SegmentNumber, DicomVR.IS, "70000");
                        }
                        return "SegmentNumber 70000 (IS)";
                }
            case "labelmap-values":
            {
                var data = ds[DicomTags.PixelData]!.Value.ToArray();
                for (var b = 0; b < data.Length; b += 3)
                {
                    data[b] = (byte)random.Next(256);
                }
                ds.SetBytes(DicomTags.PixelData, DicomVR.OB, data);
                return "pixel values that are no declared segment";
            }
            case "nesting":
            {
                var depth = random.Next(1, 41);
                var item = new DicomDataset().SetString(DicomTags.SegmentLabel, DicomVR.LO, "deep");
                for (var level = 1; level < depth; level++)
                {
                    item = new DicomDataset().SetSequence(ContentSequence, item);
                }
                ds.SetSequence(ContentSequence, item);
                return $"ContentSequence nested {depth} levels";
            }
            case "type":
            {
                string[] values = ["FRACTIONAL", "LABELMAP", "BINARY", "PROBABILITY", "", "binary"];
                var value = Pick(values, random);
                ds.SetString(DicomTags.SegmentationType, DicomVR.CS, value);
                if (value == "FRACTIONAL" && random.Next(2) == 0)
                {
                    ds.SetUInt16(DicomTags.MaximumFractionalValue, 0);
                }
                return $"SegmentationType '{value}'";
            }
            default:
                return "unchanged";
        }
    }

    private static void SetText(DicomDataset ds, IReadOnlyList<DicomDataset> perFrame, string which, string text)
    {
        var segments = ds.GetSequence(DicomTags.SegmentSequence);
        switch (which)
        {
            case "SegmentLabel": segments[0].SetString(DicomTags.SegmentLabel, DicomVR.LO, "liver" + text); break;
            case "SegmentAlgorithmType": segments[0].SetString(DicomTags.SegmentAlgorithmType, DicomVR.CS, text); break;
            case "SegmentAlgorithmName": segments[0].SetString(DicomTags.SegmentAlgorithmName, DicomVR.LO, text); break;
            case "SegmentDescription": segments[0].SetString(DicomTags.SegmentDescription, DicomVR.LO, text); break;
            case "ContentCreatorName": ds.SetString(DicomTags.ContentCreatorName, DicomVR.PN, text); break;
            case "SeriesDescription": ds.SetString(DicomTags.SeriesDescription, DicomVR.LO, text); break;
            case "SegmentationType": ds.SetString(DicomTags.SegmentationType, DicomVR.CS, "BINARY" + text); break;
            case "ContentDate": ds.SetString(DicomTags.ContentDate, DicomVR.DA, text); break;
            case "ContentTime": ds.SetString(DicomTags.ContentTime, DicomVR.TM, text); break;
            case "FrameOfReferenceUID": ds.SetString(DicomTags.FrameOfReferenceUID, DicomVR.UI, ds.GetString(DicomTags.FrameOfReferenceUID) + text); break;
            case "ReferencedSeriesUID":
                ds.GetFirstItem(DicomTags.ReferencedSeriesSequence)!.SetString(DicomTags.SeriesInstanceUID, DicomVR.UI,
                    ds.GetFirstItem(DicomTags.ReferencedSeriesSequence)!.GetString(DicomTags.SeriesInstanceUID) + text);
                break;
            case "ReferencedSOPInstanceUID":
                foreach (var instance in ds.GetFirstItem(DicomTags.ReferencedSeriesSequence)!.GetSequence(DicomTags.ReferencedInstanceSequence))
                {
                    instance.SetString(DicomTags.ReferencedSOPInstanceUID, DicomVR.UI, instance.GetString(DicomTags.ReferencedSOPInstanceUID) + text);
                }
                break;
            case "SourceImageUID":
                foreach (var frame in perFrame)
                {
                    var source = frame.GetFirstItem(DicomTags.DerivationImageSequence)!.GetFirstItem(DicomTags.SourceImageSequence)!;
                    source.SetString(DicomTags.ReferencedSOPInstanceUID, DicomVR.UI, source.GetString(DicomTags.ReferencedSOPInstanceUID) + text);
                }
                break;
            default:
                // Still unique: the mutation only adds to the SEG's own new UID.
                ds.SetString(DicomTags.SOPInstanceUID, DicomVR.UI, ds.GetString(DicomTags.SOPInstanceUID) + text);
                break;
        }
    }

    private static string NastyText(Random random)
    {
        if (random.Next(4) == 0)
        {
            // Overlong: far beyond any VR's maximum, with a NUL in the middle for good measure.
            var length = random.Next(1_000, 20_000);
            return new string('x', length / 2) + "\0" + new string('y', length / 2);
        }
        var parts = Enumerable.Range(0, random.Next(1, 6)).Select(_ => Pick(Nasty, random));
        return string.Concat(parts);
    }

    private static string FlipBytes(byte[] bytes, Random random)
    {
        // Past the preamble and meta, so the file still looks like DICOM to whoever stores it.
        var flips = random.Next(1, 9);
        for (var i = 0; i < flips; i++)
        {
            var at = random.Next(Math.Min(400, bytes.Length - 1), bytes.Length);
            bytes[at] ^= (byte)(1 << random.Next(8));
        }
        return string.Create(CultureInfo.InvariantCulture, $"{flips} bit flips");
    }

    private static T Pick<T>(IReadOnlyList<T> values, Random random) => values[random.Next(values.Count)];
}
