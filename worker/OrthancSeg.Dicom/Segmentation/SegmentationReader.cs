using System.Buffers;
using System.Globalization;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Segmentation;

/// <summary>
/// Rasterises a DICOM SEG (BINARY, FRACTIONAL or LABELMAP) onto the grid of the series it segments, mapping
/// segments to label values by name or code through a <see cref="SegmentMapping"/>.
/// </summary>
/// <remarks>
/// <para>Each frame goes to the slice whose SOPInstanceUID its DerivationImageSequence/SourceImageSequence
/// references (per frame, else shared); without references, to the slice at its PlanePositionSequence
/// position projected on the slice normal (tolerance max(0.001 mm, 1% of the slice spacing), in-plane
/// position checked too). Frame order and DimensionIndexValues are never used: writers disagree on them.</para>
/// <para>Frames whose orientation is the series' with the row and/or column direction reversed are flipped
/// into place; any other orientation is refused. FRACTIONAL voxels count when value ≥ 50% of
/// MaximumFractionalValue, except in FRACTIONAL SEGs holding only 0 and 1 (dcmjs' legacy RLE export), read as binary. In LABELMAP SEGs the pixel value is the segment number.</para>
/// <para><b>Overlap rule:</b> where segments with different label values mark the same voxel, the
/// <b>highest label value wins</b>. This is independent of frame and segment order, so the same SEG always gives
/// the same label map; the number of such voxels is reported in <see cref="LabelMapResult.OverlapVoxels"/>.</para>
/// <para>Refused with a <see cref="DicomException"/>: not a SEG; another FrameOfReferenceUID or other
/// Rows/Columns than the series; more frames than <see cref="MaxFrames"/> or than the pixel data holds; a bit depth
/// the type does not allow; references to instances not in the series; frames that match no slice (a position that is
/// not finite matches none); an orientation that is not the series' (up to flips) or is no direction at all; no
/// segments; a segment with voxels that the mapping does not know (the message lists the known names); no painted voxel at all. A segment the mapping does not know
/// but that marks nothing is skipped with a warning (OHIF keeps empty default segments).</para>
/// </remarks>
public static class SegmentationReader
{
    /// <summary>
    /// Frames a SEG may declare: far above any real one (a whole-body model's 117 segments on 1,000 slices), and low enough
    /// that what is kept per frame stays small whatever NumberOfFrames says.
    /// </summary>
    public const int MaxFrames = 262_144;

    /// <summary>
    /// Reads what a SEG says about itself (<see cref="SegmentationDescription"/>) and checks that its frames are there: the
    /// declared frame count, size and bit depth against the limits and against the pixel bytes present, before anything is
    /// allocated for them. Placing the frames on a series is <see cref="Read"/>'s job.
    /// </summary>
    /// <exception cref="DicomException">The file is no usable SEG; the message says why in words a person can act on.</exception>
    public static SegmentationDescription Describe(DicomFile segmentation)
    {
        ArgumentNullException.ThrowIfNull(segmentation);
        var ds = segmentation.Dataset;
        var (sopClass, type) = Identify(ds);
        var sopInstanceUid = ds.GetString(DicomTags.SOPInstanceUID) ?? throw new DicomException("The SEG has no SOPInstanceUID");
        var pixels = OpenPixels(segmentation, type);

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
        referencedInstances.AddRange(References(ds.GetFirstItem(DicomTags.SharedFunctionalGroupsSequence)));
        foreach (var frame in ds.GetSequence(DicomTags.PerFrameFunctionalGroupsSequence))
        {
            referencedInstances.AddRange(References(frame));
        }
        var segments = ds.GetSequence(DicomTags.SegmentSequence).Select(SegmentInfo.From).ToList();
        return new SegmentationDescription(sopInstanceUid, sopClass, type, referencedSeries.Distinct().ToList(), referencedInstances.Distinct().ToList(),
            ds.GetString(DicomTags.FrameOfReferenceUID), ds.GetText(DicomTags.ContentCreatorName), SegmentationDescription.ContentTimeOf(ds),
            pixels.Rows, pixels.Columns, pixels.FrameCount, segments);
    }

    public static LabelMapResult Read(DicomFile segmentation, SeriesGrid grid, SegmentMapping mapping, DicomLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(segmentation);
        ArgumentNullException.ThrowIfNull(grid);
        ArgumentNullException.ThrowIfNull(mapping);
        var ds = segmentation.Dataset;
        var warnings = new List<string>();
        var (_, type) = Identify(ds);

        var frameOfReference = ds.GetString(DicomTags.FrameOfReferenceUID);
        if (frameOfReference is null)
        {
            warnings.Add("the SEG has no FrameOfReferenceUID; frames were placed by their references and positions only");
        }
        else if (frameOfReference != grid.FrameOfReferenceUid)
        {
            throw new DicomException($"The SEG lies in FrameOfReferenceUID {frameOfReference}, but series {grid.SeriesInstanceUid} lies in {grid.FrameOfReferenceUid}: it does not segment this series");
        }
        var geometry = grid.Geometry;
        var rows = ds.GetInt(DicomTags.Rows);
        var columns = ds.GetInt(DicomTags.Columns);
        if (rows is null || columns is null)
        {
            throw new DicomException("The SEG has no Rows/Columns");
        }
        if (rows != geometry.Rows || columns != geometry.Columns)
        {
            throw new DicomException($"The SEG frames are {rows}×{columns} (Rows×Columns) but the series images are {geometry.Rows}×{geometry.Columns}; cropped or resampled SEGs are not supported");
        }
        var referencedSeries = ds.GetSequence(DicomTags.ReferencedSeriesSequence).Select(i => i.GetString(DicomTags.SeriesInstanceUID)).ToList();
        if (referencedSeries.Count > 0 && !referencedSeries.Contains(grid.SeriesInstanceUid))
        {
            warnings.Add($"ReferencedSeriesSequence names {string.Join(", ", referencedSeries)}, not series {grid.SeriesInstanceUid}");
        }

        var segments = ReadSegments(ds);
        // The pixel data is checked against what the SEG declares before anything is allocated per frame.
        var pixels = PixelSource.Open(segmentation, type, warnings);
        var frames = PlaceFrames(ds, grid, type, pixels.FrameCount, segments, warnings);
        var values = new Dictionary<int, byte?>();
        foreach (var segment in segments.Values)
        {
            values[segment.Number] = mapping.Resolve(segment);
        }

        (limits ?? DicomLimits.Default).CheckVolume(geometry.Columns, geometry.Rows, geometry.Slices, 1, "The label map");
        var label = Volume.Allocate(geometry, VoxelType.UInt8);
        var painter = new Painter(label, frames, segments, values, pixels);
        painter.PaintAll();

        var unknown = painter.Counts.Where(c => c.Value > 0 && values[c.Key] is null).Select(c => segments[c.Key]).ToList();
        if (unknown.Count > 0)
        {
            throw new DicomException($"The SEG has {string.Join(", ", unknown.Select(s => $"{s} with {painter.Counts[s.Number]} voxels"))}, which the label mapping does not know; known names: {string.Join(", ", mapping.KnownNames)}");
        }
        foreach (var segment in segments.Values.Where(s => values[s.Number] is null))
        {
            warnings.Add($"{segment} is empty and not in the label mapping; skipped");
        }
        var summaries = segments.Values.Where(s => values[s.Number] is not null)
            .Select(s => new SegmentSummary(s, values[s.Number]!.Value, painter.Counts.GetValueOrDefault(s.Number),
                painter.SlicesOf.TryGetValue(s.Number, out var slices) ? slices.Order().ToArray() : [], painter.FramesOf.GetValueOrDefault(s.Number)))
            .ToList();
        if (summaries.Sum(s => s.VoxelCount) == 0)
        {
            throw new DicomException($"The SEG marks no voxel ({frames.Length} frame(s), {segments.Count} segment(s)): there is nothing to learn from");
        }
        if (painter.Overlap > 0)
        {
            warnings.Add(string.Create(CultureInfo.InvariantCulture, $"{painter.Overlap} voxel(s) belong to segments with different label values; the highest label value was kept"));
        }
        return new LabelMapResult(label, summaries, painter.Overlap, type, warnings);
    }

    /// <summary>The SOP class and SegmentationType, or why the file is not a SEG this reader reads.</summary>
    private static (string SopClass, string Type) Identify(DicomDataset ds)
    {
        var sopClass = ds.GetString(DicomTags.SOPClassUID);
        if (sopClass is null || !SopClasses.IsSegmentation(sopClass))
        {
            throw new DicomException($"The file is not a DICOM SEG (SOPClassUID {sopClass ?? "missing"}, Modality {ds.GetString(DicomTags.Modality) ?? "missing"}; "
                + $"expected SOP Class {SopClasses.Segmentation} or {SopClasses.LabelMapSegmentation})");
        }
        var type = ds.GetString(DicomTags.SegmentationType)?.ToUpperInvariant() ?? (sopClass == SopClasses.LabelMapSegmentation ? "LABELMAP" : null);
        if (type is not ("BINARY" or "FRACTIONAL" or "LABELMAP"))
        {
            throw new DicomException($"SegmentationType {type ?? "missing"} is not BINARY, FRACTIONAL or LABELMAP");
        }
        return (sopClass, type);
    }

    /// <summary>
    /// The SEG's pixel data, checked before any frame is decoded: a bit depth the type allows, at most <see cref="MaxFrames"/>
    /// frames, and the bytes for every declared frame present (native data by length, 1-bit data by a packing that fits,
    /// RLE by one fragment at least per frame).
    /// </summary>
    private static DicomPixelData OpenPixels(DicomFile file, string type)
    {
        var pixels = FramePixels.Open(file.Dataset, file.TransferSyntaxUid, "The SEG");
        if (pixels.FrameCount > MaxFrames)
        {
            throw new DicomException($"The SEG declares {pixels.FrameCount} frames (NumberOfFrames); more than {MaxFrames} is not a SEG the worker reads");
        }
        var bits = pixels.BitsAllocated;
        switch (type)
        {
            case "LABELMAP" when bits is 8 or 16:
            case "FRACTIONAL" when bits == 8:
            case "BINARY" when bits is 1 or 8:
                break;
            default:
                throw new DicomException($"A {type} SEG with BitsAllocated {bits} is not supported (BINARY: 1, FRACTIONAL: 8, LABELMAP: 8 or 16)");
        }
        if (pixels.SamplesPerPixel != 1)
        {
            throw new DicomException($"The SEG has SamplesPerPixel {pixels.SamplesPerPixel}; a segmentation has one sample per pixel");
        }
        var element = file.Dataset[DicomTags.PixelData]!;
        if (element.IsEncapsulated)
        {
            var fragments = element.Fragments!.Count - 1;
            if (fragments < pixels.FrameCount)
            {
                throw new DicomException($"The SEG declares {pixels.FrameCount} frames but its encapsulated pixel data holds {fragments} fragments");
            }
        }
        else if (bits == 1)
        {
            // Throws when the length fits no packing of the declared frames.
            pixels.GuessBitPacking();
        }
        return pixels;
    }

    private static SortedDictionary<int, SegmentInfo> ReadSegments(DicomDataset ds)
    {
        var segments = new SortedDictionary<int, SegmentInfo>();
        foreach (var item in ds.GetSequence(DicomTags.SegmentSequence))
        {
            var segment = SegmentInfo.From(item);
            if (segment.Number is <= 0 or > ushort.MaxValue || !segments.TryAdd(segment.Number, segment))
            {
                throw new DicomException($"SegmentSequence has an invalid or repeated SegmentNumber {segment.Number}");
            }
        }
        if (segments.Count == 0)
        {
            throw new DicomException("The SEG has no segments (SegmentSequence is empty or missing)");
        }
        return segments;
    }

    /// <summary>Where one frame goes: slice, segment (0 for LABELMAP) and whether it is mirrored.</summary>
    internal readonly record struct FramePlacement(int Slice, int Segment, bool FlipRows, bool FlipColumns);

    private static FramePlacement[] PlaceFrames(DicomDataset ds, SeriesGrid grid, string type, int frameCount, SortedDictionary<int, SegmentInfo> segments,
        List<string> warnings)
    {
        var perFrame = ds.GetSequence(DicomTags.PerFrameFunctionalGroupsSequence);
        var shared = ds.GetFirstItem(DicomTags.SharedFunctionalGroupsSequence);
        if (perFrame.Count != 0 && perFrame.Count != frameCount)
        {
            throw new DicomException($"PerFrameFunctionalGroupsSequence has {perFrame.Count} items for {frameCount} frames");
        }
        var g = grid.Geometry;
        var sliceOf = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var k = 0; k < grid.SopInstanceUids.Count; k++)
        {
            sliceOf[grid.SopInstanceUids[k]] = k;
        }
        var distances = grid.SlicePositions.Select(p => p.Dot(g.SliceDirection)).ToArray();
        var tolerance = Math.Max(1e-3, 0.01 * g.Spacing.Z);
        var inPlaneTolerance = Math.Max(1e-3, 0.05 * Math.Min(g.Spacing.X, g.Spacing.Y));
        var placements = new FramePlacement[frameCount];
        var disagreements = 0;
        for (var f = 0; f < frameCount; f++)
        {
            var item = perFrame.Count > 0 ? perFrame[f] : null;
            var (flipRows, flipColumns) = Flips(Group(item, shared, DicomTags.PlaneOrientationSequence)?.GetDoubles(DicomTags.ImageOrientationPatient), g, f);

            int? byReference = null;
            var references = References(item).ToList();
            if (references.Count == 0)
            {
                references = References(shared).ToList();
            }
            if (references.Count > 0)
            {
                var known = references.FirstOrDefault(sliceOf.ContainsKey);
                if (known is null)
                {
                    throw new DicomException($"SEG frame {f + 1} references SOPInstanceUID {string.Join(", ", references)}, which is not an image of series {grid.SeriesInstanceUid}");
                }
                byReference = sliceOf[known];
            }

            int? byPosition = null;
            string? positionProblem = null;
            var ipp = Group(item, shared, DicomTags.PlanePositionSequence)?.GetDoubles(DicomTags.ImagePositionPatient);
            if (ipp is { Length: 3 } && !ipp.All(double.IsFinite))
            {
                positionProblem = $"its ImagePositionPatient {string.Join('\\', ipp.Select(v => v.ToString(CultureInfo.InvariantCulture)))} is not a finite position";
            }
            else if (ipp is { Length: 3 })
            {
                var position = new Vector3D(ipp[0], ipp[1], ipp[2]);
                var d = position.Dot(g.SliceDirection);
                var k = Nearest(distances, d);
                var corner = grid.SlicePositions[k]
                    + (g.RowDirection * (flipColumns ? (g.Columns - 1) * g.Spacing.X : 0))
                    + (g.ColumnDirection * (flipRows ? (g.Rows - 1) * g.Spacing.Y : 0));
                var offset = position - corner;
                var inPlane = (offset - (g.SliceDirection * offset.Dot(g.SliceDirection))).Length;
                if (Math.Abs(d - distances[k]) > tolerance)
                {
                    positionProblem = string.Create(CultureInfo.InvariantCulture, $"its position {d:0.###} mm along the normal is {Math.Abs(d - distances[k]):0.###} mm from the nearest slice {k} (tolerance {tolerance:0.###} mm)");
                }
                else if (inPlane > inPlaneTolerance)
                {
                    positionProblem = string.Create(CultureInfo.InvariantCulture, $"it is shifted {inPlane:0.###} mm in-plane from slice {k}");
                }
                else
                {
                    byPosition = k;
                }
            }

            int slice;
            if (byReference is { } r)
            {
                slice = r;
                if (ipp is { Length: 3 } && positionProblem is null && byPosition != r)
                {
                    disagreements++;
                }
            }
            else if (byPosition is { } p)
            {
                slice = p;
            }
            else
            {
                throw new DicomException($"SEG frame {f + 1} matches no slice of series {grid.SeriesInstanceUid}: it references no source image and {positionProblem ?? "has no PlanePositionSequence"}");
            }

            var segment = 0;
            if (type != "LABELMAP")
            {
                segment = Group(item, shared, DicomTags.SegmentIdentificationSequence)?.GetInt(DicomTags.ReferencedSegmentNumber)
                    ?? throw new DicomException($"SEG frame {f + 1} names no segment (SegmentIdentificationSequence missing)");
                if (!segments.ContainsKey(segment))
                {
                    throw new DicomException($"SEG frame {f + 1} belongs to segment {segment}, which SegmentSequence does not describe");
                }
            }
            placements[f] = new FramePlacement(slice, segment, flipRows, flipColumns);
        }
        if (disagreements > 0)
        {
            warnings.Add($"{disagreements} frame(s) have a plane position that disagrees with their referenced image; the reference was followed");
        }
        return placements;
    }

    /// <summary>A functional group macro's item: per frame first, shared otherwise.</summary>
    private static DicomDataset? Group(DicomDataset? perFrame, DicomDataset? shared, DicomTag sequence) =>
        perFrame?.GetFirstItem(sequence) ?? shared?.GetFirstItem(sequence);

    private static IEnumerable<string> References(DicomDataset? group)
    {
        if (group is null)
        {
            yield break;
        }
        foreach (var derivation in group.GetSequence(DicomTags.DerivationImageSequence))
        {
            foreach (var source in derivation.GetSequence(DicomTags.SourceImageSequence))
            {
                if (source.GetString(DicomTags.ReferencedSOPInstanceUID) is { } uid)
                {
                    yield return uid;
                }
            }
        }
        // Some writers put SourceImageSequence straight into the frame item (pydicom-seg once did).
        foreach (var source in group.GetSequence(DicomTags.SourceImageSequence))
        {
            if (source.GetString(DicomTags.ReferencedSOPInstanceUID) is { } uid)
            {
                yield return uid;
            }
        }
    }

    private static (bool FlipRows, bool FlipColumns) Flips(double[]? orientation, VolumeGeometry g, int frame)
    {
        if (orientation is not { Length: 6 })
        {
            return (false, false);
        }
        var row = new Vector3D(orientation[0], orientation[1], orientation[2]);
        var column = new Vector3D(orientation[3], orientation[4], orientation[5]);
        if (!orientation.All(double.IsFinite) || row.Length < 1e-6 || column.Length < 1e-6)
        {
            throw new DicomException(string.Create(CultureInfo.InvariantCulture,
                $"SEG frame {frame + 1} has ImageOrientationPatient {string.Join('\\', orientation)}, which is not two directions (zero or not finite)"));
        }
        row = row.Normalized();
        column = column.Normalized();
        const double tolerance = 1e-3;
        bool Same(Vector3D a, Vector3D b) => (a - b).Length <= tolerance;
        var rowSame = Same(row, g.RowDirection);
        var rowReversed = Same(row, -g.RowDirection);
        var columnSame = Same(column, g.ColumnDirection);
        var columnReversed = Same(column, -g.ColumnDirection);
        if ((rowSame || rowReversed) && (columnSame || columnReversed))
        {
            return (columnReversed, rowReversed);
        }
        throw new DicomException(string.Create(CultureInfo.InvariantCulture,
            $"SEG frame {frame + 1} has ImageOrientationPatient {string.Join('\\', orientation)}, which is neither the series' orientation nor a mirror of it; rotated, perpendicular or oblique SEGs are not supported"));
    }

    private static int Nearest(double[] sorted, double value)
    {
        var index = Array.BinarySearch(sorted, value);
        if (index >= 0)
        {
            return index;
        }
        index = ~index;
        if (index == 0)
        {
            return 0;
        }
        if (index == sorted.Length)
        {
            return sorted.Length - 1;
        }
        return value - sorted[index - 1] <= sorted[index] - value ? index - 1 : index;
    }

    /// <summary>Frame pixels in the SEG's own encoding, decoded into masks or segment numbers on demand.</summary>
    private sealed class PixelSource
    {
        private readonly DicomPixelData _pixels;
        private readonly ReadOnlyMemory<byte> _packed;
        private readonly BitPacking _packing;
        private readonly int _threshold;

        private PixelSource(DicomPixelData pixels, ReadOnlyMemory<byte> packed, BitPacking packing, int threshold, string type)
        {
            _pixels = pixels;
            _packed = packed;
            _packing = packing;
            _threshold = threshold;
            Type = type;
        }

        public string Type { get; }

        public int Pixels => _pixels.Rows * _pixels.Columns;

        public int FrameCount => _pixels.FrameCount;

        public static PixelSource Open(DicomFile file, string type, List<string> warnings)
        {
            var ds = file.Dataset;
            var pixels = OpenPixels(file, type);
            var frames = pixels.FrameCount;
            var bits = pixels.BitsAllocated;
            var threshold = 1;
            if (type == "FRACTIONAL")
            {
                var maximum = ds.GetInt(DicomTags.MaximumFractionalValue) ?? 255;
                if (maximum is <= 0 or > 255)
                {
                    throw new DicomException($"MaximumFractionalValue {maximum} is not between 1 and 255");
                }
                threshold = (maximum + 1) / 2;
                // dcmjs' legacy RLE export (old OHIF) relabels its 0/1 BINARY frames FRACTIONAL with maximum 255
                // without scaling them: a "probability" of exactly 1/255 everywhere is that quirk, not a real
                // fraction, so such a SEG is read as binary.
                var highest = 0;
                for (var f = 0; f < frames && highest <= 1; f++)
                {
                    foreach (var v in pixels.GetFrame(f).Span)
                    {
                        highest = Math.Max(highest, v);
                    }
                }
                if (highest == 1)
                {
                    threshold = 1;
                    warnings.Add($"the FRACTIONAL SEG holds only the values 0 and 1 (MaximumFractionalValue {maximum}), as dcmjs' legacy RLE export writes; read as binary");
                }
            }
            if (bits == 1)
            {
                return new PixelSource(pixels, ds[DicomTags.PixelData]!.Value, pixels.GuessBitPacking(), 1, type);
            }
            return new PixelSource(pixels, default, BitPacking.Contiguous, threshold, type);
        }

        /// <summary>Calls <paramref name="visitor"/> with the slice pixel index of every marked pixel of <paramref name="frame"/>, mirrored as placed.</summary>
        public void VisitSet<TVisitor>(int frame, FramePlacement place, ref TVisitor visitor)
            where TVisitor : struct, IPixelVisitor
        {
            var columns = _pixels.Columns;
            var rows = _pixels.Rows;
            var flipped = place.FlipRows || place.FlipColumns;
            int Target(int p)
            {
                if (!flipped)
                {
                    return p;
                }
                var (r, c) = Math.DivRem(p, columns);
                return ((place.FlipRows ? rows - 1 - r : r) * columns) + (place.FlipColumns ? columns - 1 - c : c);
            }
            var n = Pixels;
            if (_pixels.BitsAllocated == 1 && _packing != BitPacking.Unpacked)
            {
                var data = _packed.Span;
                var startBit = _packing == BitPacking.Contiguous ? (long)frame * n : (long)frame * ((n + 7) / 8) * 8;
                var byteIndex = startBit >> 3;
                var shift = (int)(startBit & 7);
                var needed = ((startBit + n + 7) >> 3);
                if (needed > data.Length)
                {
                    throw new DicomException($"The SEG PixelData holds {data.Length} bytes, too few for frame {frame + 1}");
                }
                // Walk the frame a byte at a time so empty stretches (most of a sparse mask) cost one comparison.
                for (var p = 0; p < n; p += 8, byteIndex++)
                {
                    int bitsHere = data[(int)byteIndex] >> shift;
                    if (shift > 0 && byteIndex + 1 < data.Length)
                    {
                        bitsHere |= data[(int)byteIndex + 1] << (8 - shift);
                    }
                    bitsHere &= 0xFF;
                    if (bitsHere == 0)
                    {
                        continue;
                    }
                    var last = Math.Min(8, n - p);
                    for (var b = 0; b < last; b++)
                    {
                        if ((bitsHere & (1 << b)) != 0)
                        {
                            visitor.Visit(Target(p + b));
                        }
                    }
                }
                return;
            }
            var bytes = _pixels.BitsAllocated == 1 ? _pixels.GetFrame(frame, BitPacking.Unpacked).Span : _pixels.GetFrame(frame).Span;
            for (var p = 0; p < n; p++)
            {
                if (bytes[p] >= _threshold)
                {
                    visitor.Visit(Target(p));
                }
            }
        }

        /// <summary>LABELMAP: calls <paramref name="visit"/>(target pixel, segment number) for every non-zero pixel.</summary>
        public void ForEachLabel(int frame, FramePlacement place, Action<int, int> visit)
        {
            var columns = _pixels.Columns;
            var rows = _pixels.Rows;
            var bytes = _pixels.GetFrame(frame).Span;
            var wide = _pixels.BitsAllocated == 16;
            for (var p = 0; p < Pixels; p++)
            {
                var value = wide ? bytes[2 * p] | (bytes[(2 * p) + 1] << 8) : bytes[p];
                if (value == 0)
                {
                    continue;
                }
                var target = p;
                if (place.FlipRows || place.FlipColumns)
                {
                    var (r, c) = Math.DivRem(p, columns);
                    target = ((place.FlipRows ? rows - 1 - r : r) * columns) + (place.FlipColumns ? columns - 1 - c : c);
                }
                visit(target, value);
            }
        }
    }

    /// <summary>Paints frames slice by slice (slices in parallel: they touch disjoint parts of the label map).</summary>
    private sealed class Painter(Volume label, FramePlacement[] frames, SortedDictionary<int, SegmentInfo> segments,
        Dictionary<int, byte?> values, PixelSource pixels)
    {
        private readonly object _gate = new();

        public Dictionary<int, long> Counts { get; } = [];

        public Dictionary<int, List<int>> SlicesOf { get; } = [];

        /// <summary>Per segment, the frames that mark at least one of its voxels.</summary>
        public Dictionary<int, int> FramesOf { get; } = [];

        public long Overlap { get; private set; }

        public void PaintAll()
        {
            var bySlice = Enumerable.Range(0, frames.Length).GroupBy(f => frames[f].Slice).Select(g => (Slice: g.Key, Frames: g.ToArray())).ToArray();
            Parallelism.For(bySlice.Length, (i, _) =>
            {
                var (slice, sliceFrames) = bySlice[i];
                var counts = new Dictionary<int, long>();
                var framesOf = new Dictionary<int, int>();
                var overlap = pixels.Type == "LABELMAP" ? PaintLabels(slice, sliceFrames, counts, framesOf) : PaintMasks(slice, sliceFrames, counts, framesOf);
                lock (_gate)
                {
                    Overlap += overlap;
                    foreach (var (segment, count) in framesOf)
                    {
                        FramesOf[segment] = FramesOf.GetValueOrDefault(segment) + count;
                    }
                    foreach (var (segment, count) in counts)
                    {
                        Counts[segment] = Counts.GetValueOrDefault(segment) + count;
                        if (count > 0)
                        {
                            (SlicesOf.TryGetValue(segment, out var list) ? list : SlicesOf[segment] = []).Add(slice);
                        }
                    }
                }
            });
        }

        private long PaintMasks(int slice, int[] sliceFrames, Dictionary<int, long> counts, Dictionary<int, int> framesOf)
        {
            var n = pixels.Pixels;
            var painter = new PaintVisitor(label.Data, slice * n, n);
            byte[]? mask = null;
            try
            {
                foreach (var segmentFrames in sliceFrames.GroupBy(f => frames[f].Segment).OrderBy(g => g.Key))
                {
                    painter.Start(values[segmentFrames.Key] ?? 0);
                    var group = segmentFrames.ToArray();
                    if (group.Length == 1)
                    {
                        // The usual case: one frame per segment and slice, painted straight from the packed bits.
                        pixels.VisitSet(group[0], frames[group[0]], ref painter);
                        framesOf[segmentFrames.Key] = painter.Count > 0 ? 1 : 0;
                    }
                    else
                    {
                        // Several frames of one segment on one slice are united first, so voxels count once.
                        mask ??= ArrayPool<byte>.Shared.Rent(n);
                        Array.Clear(mask, 0, n);
                        var marker = new MaskVisitor(mask);
                        var painted = 0;
                        foreach (var f in group)
                        {
                            var before = marker.Count;
                            pixels.VisitSet(f, frames[f], ref marker);
                            painted += marker.Count > before ? 1 : 0;
                        }
                        framesOf[segmentFrames.Key] = painted;
                        for (var p = 0; p < n; p++)
                        {
                            if (mask[p] != 0)
                            {
                                painter.Visit(p);
                            }
                        }
                    }
                    counts[segmentFrames.Key] = painter.Count;
                }
                return painter.Overlap;
            }
            finally
            {
                if (mask is not null)
                {
                    ArrayPool<byte>.Shared.Return(mask);
                }
                painter.Dispose();
            }
        }

        private long PaintLabels(int slice, int[] sliceFrames, Dictionary<int, long> counts, Dictionary<int, int> framesOf)
        {
            var n = pixels.Pixels;
            var plane = ArrayPool<int>.Shared.Rent(n);
            try
            {
                Array.Clear(plane, 0, n);
                long overlap = 0;
                var unknown = 0;
                var inFrame = new HashSet<int>();
                foreach (var f in sliceFrames)
                {
                    inFrame.Clear();
                    var last = 0;
                    pixels.ForEachLabel(f, frames[f], (p, segment) =>
                    {
                        if (segment != last)
                        {
                            // Runs of one value are the rule in a label map: one set lookup per run, not per pixel.
                            inFrame.Add(segment);
                            last = segment;
                        }
                        if (!segments.ContainsKey(segment))
                        {
                            unknown = segment;
                            return;
                        }
                        var old = plane[p];
                        if (old == 0 || old == segment)
                        {
                            plane[p] = segment;
                            return;
                        }
                        // Two LABELMAP frames on one slice disagree: same rule as overlapping segments.
                        var (oldValue, newValue) = (values[old] ?? 0, values[segment] ?? 0);
                        if (oldValue != newValue)
                        {
                            overlap++;
                        }
                        if (newValue > oldValue)
                        {
                            plane[p] = segment;
                        }
                    });
                    foreach (var segment in inFrame)
                    {
                        framesOf[segment] = framesOf.GetValueOrDefault(segment) + 1;
                    }
                }
                if (unknown != 0)
                {
                    throw new DicomException($"LABELMAP pixel value {unknown} on slice {slice} is no SegmentNumber of the SEG's SegmentSequence ({string.Join(", ", segments.Keys)})");
                }
                var target = label.SliceBytes(slice);
                for (var p = 0; p < n; p++)
                {
                    var segment = plane[p];
                    if (segment == 0)
                    {
                        continue;
                    }
                    counts[segment] = counts.GetValueOrDefault(segment) + 1;
                    if (values[segment] is { } v)
                    {
                        target[p] = v;
                    }
                }
                return overlap;
            }
            finally
            {
                ArrayPool<int>.Shared.Return(plane);
            }
        }
    }

    internal interface IPixelVisitor
    {
        void Visit(int pixel);
    }

    private struct MaskVisitor(byte[] mask) : IPixelVisitor
    {
        /// <summary>Pixels visited, so the caller can tell which frames marked anything.</summary>
        public long Count { get; private set; }

        public void Visit(int pixel)
        {
            mask[pixel] = 1;
            Count++;
        }
    }

    /// <summary>
    /// Paints one segment's pixels into one slice of the label map with the overlap rule (highest label value
    /// wins), counting the segment's pixels and, once per voxel, the voxels two label values claim.
    /// </summary>
    private struct PaintVisitor(byte[] labels, int offset, int pixels) : IPixelVisitor, IDisposable
    {
        private byte _value;
        private byte[]? _overlapped;

        public long Count { get; private set; }

        public long Overlap { get; private set; }

        /// <summary>Begins a segment; value 0 = not mapped (counted, not painted).</summary>
        public void Start(byte value)
        {
            _value = value;
            Count = 0;
        }

        public void Visit(int pixel)
        {
            Count++;
            if (_value == 0)
            {
                return;
            }
            ref var voxel = ref labels[offset + pixel];
            var old = voxel;
            if (old == 0)
            {
                voxel = _value;
            }
            else if (old != _value)
            {
                if (_overlapped is null)
                {
                    _overlapped = ArrayPool<byte>.Shared.Rent(pixels);
                    Array.Clear(_overlapped, 0, pixels);
                }
                if (_overlapped[pixel] == 0)
                {
                    _overlapped[pixel] = 1;
                    Overlap++;
                }
                voxel = Math.Max(old, _value);
            }
        }

        public void Dispose()
        {
            if (_overlapped is not null)
            {
                ArrayPool<byte>.Shared.Return(_overlapped);
                _overlapped = null;
            }
        }
    }
}
