using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Segmentation;

/// <summary>
/// Writes a label map on a series' grid as a BINARY DICOM SEG (SOP class 1.2.840.10008.5.1.4.1.1.66.4) that OHIF,
/// Slicer/dcmqi and highdicom load (formats.md §2.10): one segment per label value present, numbered 1..N in
/// ascending label order; only frames with content, segment-major, slices ascending; per-frame references,
/// plane positions and segment identification; continuous LSB-first bit packing.
/// </summary>
public static class SegmentationWriter
{
    private static readonly DicomTag SpatialLocationsPreserved = new(0x0028, 0x135A);
    private static readonly DicomTag PatientAge = new(0x0010, 0x1010);
    private static readonly DicomTag SegmentationAlgorithmIdentificationSequence = new(0x0062, 0x0007);
    private static readonly DicomTag SegmentedPropertyTypeModifierCodeSequence = new(0x0062, 0x0011);
    private static readonly DicomTag AlgorithmFamilyCodeSequence = new(0x0066, 0x002F);
    private static readonly DicomTag AlgorithmVersion = new(0x0066, 0x0031);
    private static readonly DicomTag AlgorithmParameters = new(0x0066, 0x0032);
    private static readonly DicomTag AlgorithmName = new(0x0066, 0x0036);
    private static readonly CodedConcept ArtificialIntelligence = new("123110", "DCM", "Artificial Intelligence");
    private static readonly CodedConcept SegmentationDerivation = new("113076", "DCM", "Segmentation");
    private static readonly CodedConcept SourceImagePurpose = new("121322", "DCM", "Source image for image processing operation");

    private static readonly (byte R, byte G, byte B)[] Palette =
    [
        (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
        (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40),
    ];

    // Attributes copied from the source so the SEG joins the same patient and study (what dcmjs copies, plus
    // StudyDescription); the Type 2 ones are written empty when the source lacks them.
    private static readonly (DicomTag Tag, DicomVR VR, bool Type2)[] PatientStudy =
    [
        (DicomTags.PatientName, DicomVR.PN, true), (DicomTags.PatientID, DicomVR.LO, true),
        (DicomTags.PatientBirthDate, DicomVR.DA, true), (DicomTags.PatientSex, DicomVR.CS, true),
        (PatientAge, DicomVR.AS, false), (DicomTags.StudyInstanceUID, DicomVR.UI, false),
        (DicomTags.StudyDate, DicomVR.DA, true), (DicomTags.StudyTime, DicomVR.TM, true),
        (DicomTags.ReferringPhysicianName, DicomVR.PN, true), (DicomTags.StudyID, DicomVR.SH, true),
        (DicomTags.AccessionNumber, DicomVR.SH, true), (DicomTags.StudyDescription, DicomVR.LO, false),
        (DicomTags.FrameOfReferenceUID, DicomVR.UI, false), (DicomTags.PositionReferenceIndicator, DicomVR.LO, true),
    ];

    /// <param name="labelMap">UInt8 label map on the grid of <paramref name="sources"/> (as SeriesVolumeBuilder makes it).</param>
    /// <param name="sources">The series' image data sets, in any order: each is placed on its slice by position.</param>
    /// <param name="segments">Descriptions of the label values; every value present must have one.</param>
    public static SegmentationWriteResult Write(Volume labelMap, IReadOnlyList<DicomDataset> sources,
        IEnumerable<SegmentDefinition> segments, SegmentationWriterOptions options)
    {
        ArgumentNullException.ThrowIfNull(labelMap);
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentNullException.ThrowIfNull(segments);
        ArgumentNullException.ThrowIfNull(options);
        if (labelMap.Type != VoxelType.UInt8)
        {
            throw new DicomException($"A label map must hold UInt8 voxels, not {labelMap.Type}");
        }
        if (options.AlgorithmType != SegmentAlgorithmType.Manual && string.IsNullOrWhiteSpace(options.AlgorithmName))
        {
            throw new DicomException($"An {AlgorithmTypeCode(options.AlgorithmType)} segmentation needs an algorithm name (e.g. the model id)");
        }
        CheckOptions(options);
        var definitions = new Dictionary<byte, SegmentDefinition>();
        foreach (var definition in segments)
        {
            if (definition.Value == 0 || string.IsNullOrWhiteSpace(definition.Label) || !definitions.TryAdd(definition.Value, definition))
            {
                throw new DicomException($"Segment definition for value {definition.Value} ('{definition.Label}') is repeated, has no label, or describes the background 0");
            }
            CheckLength($"The segment name of label value {definition.Value}", definition.Label, 64);
        }

        var geometry = labelMap.Geometry;
        var slices = PlaceSources(geometry, sources);
        var n = geometry.SliceVoxelCount;

        // counts[v][k]: voxels of value v on slice k.
        var counts = new long[256, geometry.Slices];
        Parallelism.For(geometry.Slices, (k, _) =>
        {
            var slice = labelMap.SliceBytes(k);
            // Most slices of a prediction are empty: a vectorised scan skips them without a histogram.
            if (slice.IndexOfAnyExcept((byte)0) < 0)
            {
                return;
            }
            var local = Histogram(slice);
            for (var v = 1; v < 256; v++)
            {
                counts[v, k] = local[v];
            }
        });
        var present = Enumerable.Range(1, 255).Where(v => Enumerable.Range(0, geometry.Slices).Any(k => counts[v, k] > 0)).Select(v => (byte)v).ToList();
        if (present.Count == 0)
        {
            return new SegmentationWriteResult(null, [], "the label map holds no labelled voxel, and a SEG without frames is not valid; nothing was written");
        }
        var undefined = present.Where(v => !definitions.ContainsKey(v)).ToList();
        if (undefined.Count > 0)
        {
            throw new DicomException($"Label value(s) {string.Join(", ", undefined)} occur in the label map but have no segment definition (defined: {string.Join(", ", definitions.Keys.Order())})");
        }

        var frames = new List<(int Segment, byte Value, int Slice)>();
        var written = new List<WrittenSegment>();
        for (var s = 0; s < present.Count; s++)
        {
            var value = present[s];
            var before = frames.Count;
            long total = 0;
            for (var k = 0; k < geometry.Slices; k++)
            {
                if (counts[value, k] > 0)
                {
                    frames.Add((s + 1, value, k));
                    total += counts[value, k];
                }
            }
            written.Add(new WrittenSegment(s + 1, value, definitions[value].Label, total, frames.Count - before));
        }

        var ds = new DicomDataset();
        WriteTopLevel(ds, sources, slices, options, frames.Count, geometry);
        ds.SetSequence(DicomTags.SegmentSequence, written.Select(w => SegmentItem(w, definitions[w.Value], options)).ToArray());
        WriteFunctionalGroups(ds, sources, slices, frames, geometry);
        ds.SetBytes(DicomTags.PixelData, DicomVR.OB, PackFrames(labelMap, frames, n));
        return new SegmentationWriteResult(ds, written, null);
    }

    private static void CheckOptions(SegmentationWriterOptions options)
    {
        CheckLength("The algorithm name", options.AlgorithmName, 64);
        CheckLength("The algorithm version", options.AlgorithmVersion, 64);
        CheckLength("The series description", options.SeriesDescription, 64);
        CheckLength("The content description", options.ContentDescription, 64);
        if (options.ContentLabel.Length is 0 or > 16 || !options.ContentLabel.All(c => char.IsAsciiLetterOrDigit(c) || c is ' ' or '_'))
        {
            throw new DicomException($"The content label '{options.ContentLabel}' is not a DICOM code string: 1 to 16 letters, digits, spaces or underscores");
        }
        if (options.SeriesNumber is < 0 or > 99_999_999)
        {
            throw new DicomException($"The series number {options.SeriesNumber} does not fit an integer string (0 to 99999999)");
        }
    }

    private static void CheckLength(string what, string? value, int limit)
    {
        if (value is not null && value.Length > limit)
        {
            throw new DicomException($"{what} is {value.Length} characters long, more than the {limit} DICOM allows: '{value[..Math.Min(value.Length, 80)]}'");
        }
    }

    /// <summary>The default SeriesDescription names the model, so the study browser says which model made the SEG.</summary>
    private static string SeriesDescriptionOf(SegmentationWriterOptions options)
    {
        if (options.SeriesDescription is { } given)
        {
            return given;
        }
        if (options.AlgorithmType == SegmentAlgorithmType.Manual || string.IsNullOrWhiteSpace(options.AlgorithmName))
        {
            return "Segmentation";
        }
        var text = $"Segmentation by {options.AlgorithmName}";
        return text.Length <= 64 ? text : text[..64];
    }

    /// <summary>slices[k] = index into sources of the image on slice k.</summary>
    private static int[] PlaceSources(VolumeGeometry g, IReadOnlyList<DicomDataset> sources)
    {
        if (sources.Count != g.Slices)
        {
            throw new DicomException($"The label map has {g.Slices} slices but {sources.Count} source images were given");
        }
        var slices = Enumerable.Repeat(-1, g.Slices).ToArray();
        var tolerance = Math.Max(1e-3, 0.01 * g.Spacing.Z);
        var inPlaneTolerance = Math.Max(1e-3, 0.05 * Math.Min(g.Spacing.X, g.Spacing.Y));
        string? frameOfReference = null;
        for (var i = 0; i < sources.Count; i++)
        {
            var source = sources[i];
            var uid = source.GetString(DicomTags.SOPInstanceUID) ?? throw new DicomException($"Source image {i + 1} has no SOPInstanceUID");
            if (source.GetString(DicomTags.SOPClassUID) is null)
            {
                throw new DicomException($"Source image {uid} has no SOPClassUID");
            }
            if (source.GetInt(DicomTags.Rows) != g.Rows || source.GetInt(DicomTags.Columns) != g.Columns)
            {
                throw new DicomException($"Source image {uid} is {source.GetInt(DicomTags.Rows)}×{source.GetInt(DicomTags.Columns)} but the label map slices are {g.Rows}×{g.Columns}");
            }
            var forUid = source.GetString(DicomTags.FrameOfReferenceUID) ?? throw new DicomException($"Source image {uid} has no FrameOfReferenceUID");
            if (frameOfReference is not null && forUid != frameOfReference)
            {
                throw new DicomException($"Source images lie in different frames of reference ({frameOfReference}, {forUid})");
            }
            frameOfReference = forUid;
            var iop = source.GetDoubles(DicomTags.ImageOrientationPatient);
            var ipp = source.GetDoubles(DicomTags.ImagePositionPatient);
            if (iop.Length != 6 || ipp.Length != 3 || source.GetDoubles(DicomTags.PixelSpacing).Length != 2)
            {
                throw new DicomException($"Source image {uid} lacks ImagePositionPatient, ImageOrientationPatient or PixelSpacing");
            }
            if ((new Vector3D(iop[0], iop[1], iop[2]).Normalized() - g.RowDirection).Length > 1e-3
                || (new Vector3D(iop[3], iop[4], iop[5]).Normalized() - g.ColumnDirection).Length > 1e-3)
            {
                throw new DicomException($"Source image {uid} is not oriented like the label map");
            }
            var offset = new Vector3D(ipp[0], ipp[1], ipp[2]) - g.Origin;
            var along = offset.Dot(g.SliceDirection) / g.Spacing.Z;
            var k = (int)Math.Round(along);
            var inPlane = (offset - (g.SliceDirection * offset.Dot(g.SliceDirection))).Length;
            if (k < 0 || k >= g.Slices || Math.Abs(along - k) * g.Spacing.Z > tolerance || inPlane > inPlaneTolerance)
            {
                throw new DicomException(string.Create(CultureInfo.InvariantCulture, $"Source image {uid} lies on no slice of the label map (slice index {along:0.###}, {inPlane:0.###} mm in-plane off)"));
            }
            if (slices[k] >= 0)
            {
                throw new DicomException($"Source images {sources[slices[k]].GetString(DicomTags.SOPInstanceUID)} and {uid} both lie on slice {k}");
            }
            slices[k] = i;
        }
        return slices;
    }

    private static void WriteTopLevel(DicomDataset ds, IReadOnlyList<DicomDataset> sources, int[] slices, SegmentationWriterOptions options, int frameCount, VolumeGeometry g)
    {
        var first = sources[slices[0]];
        var now = DateTime.Now;
        var date = now.ToString("yyyyMMdd", CultureInfo.InvariantCulture);
        var time = now.ToString("HHmmss.ffffff", CultureInfo.InvariantCulture);
        var sopInstanceUid = Implementation.NewUid();
        ds.SetString(DicomTags.SpecificCharacterSet, DicomVR.CS, "ISO_IR 192");
        ds.SetStrings(DicomTags.ImageType, DicomVR.CS, ["DERIVED", "PRIMARY"]);
        ds.SetString(DicomTags.InstanceCreationDate, DicomVR.DA, date);
        ds.SetString(DicomTags.InstanceCreationTime, DicomVR.TM, time);
        ds.SetString(DicomTags.SOPClassUID, DicomVR.UI, SopClasses.Segmentation);
        ds.SetString(DicomTags.SOPInstanceUID, DicomVR.UI, sopInstanceUid);
        ds.SetString(DicomTags.SeriesDate, DicomVR.DA, date);
        ds.SetString(DicomTags.ContentDate, DicomVR.DA, date);
        ds.SetString(DicomTags.SeriesTime, DicomVR.TM, time);
        ds.SetString(DicomTags.ContentTime, DicomVR.TM, time);
        ds.SetString(DicomTags.Modality, DicomVR.CS, "SEG");
        ds.SetString(DicomTags.Manufacturer, DicomVR.LO, "OrthancSeg");
        ds.SetString(DicomTags.ManufacturerModelName, DicomVR.LO, "OrthancSeg");
        ds.SetString(DicomTags.DeviceSerialNumber, DicomVR.LO, "1");
        ds.SetString(DicomTags.SoftwareVersions, DicomVR.LO, Implementation.VersionName);
        ds.SetString(DicomTags.SeriesDescription, DicomVR.LO, SeriesDescriptionOf(options));
        ds.SetString(DicomTags.SeriesInstanceUID, DicomVR.UI, Implementation.NewUid());
        ds.SetNumbers(DicomTags.SeriesNumber, DicomVR.IS, [options.SeriesNumber]);
        ds.SetNumbers(DicomTags.InstanceNumber, DicomVR.IS, [1]);
        foreach (var (tag, vr, type2) in PatientStudy)
        {
            CopyText(first, ds, tag, vr, type2);
        }
        ds.SetString(DicomTags.ContentLabel, DicomVR.CS, options.ContentLabel.ToUpperInvariant());
        ds.SetString(DicomTags.ContentDescription, DicomVR.LO, options.ContentDescription);
        ds.SetString(DicomTags.ContentCreatorName, DicomVR.PN, options.ContentCreatorName);
        ds.SetUInt16(DicomTags.SamplesPerPixel, 1);
        ds.SetString(DicomTags.PhotometricInterpretation, DicomVR.CS, "MONOCHROME2");
        ds.SetNumbers(DicomTags.NumberOfFrames, DicomVR.IS, [frameCount]);
        ds.SetUInt16(DicomTags.Rows, (ushort)g.Rows);
        ds.SetUInt16(DicomTags.Columns, (ushort)g.Columns);
        ds.SetUInt16(DicomTags.BitsAllocated, 1);
        ds.SetUInt16(DicomTags.BitsStored, 1);
        ds.SetUInt16(DicomTags.HighBit, 0);
        ds.SetUInt16(DicomTags.PixelRepresentation, 0);
        ds.SetString(DicomTags.LossyImageCompression, DicomVR.CS, "00");
        ds.SetString(DicomTags.SegmentationType, DicomVR.CS, "BINARY");
        // A label map gives each voxel one value, so segments written from it cannot overlap.
        ds.SetString(DicomTags.SegmentsOverlap, DicomVR.CS, "NO");

        var series = new DicomDataset()
            .SetSequence(DicomTags.ReferencedInstanceSequence, slices.Select(i => Reference(sources[i])).ToArray())
            .SetString(DicomTags.SeriesInstanceUID, DicomVR.UI, first.GetString(DicomTags.SeriesInstanceUID) ?? throw new DicomException("The source images have no SeriesInstanceUID"));
        ds.SetSequence(DicomTags.ReferencedSeriesSequence, series);

        var organization = Implementation.NewUid();
        ds.SetSequence(DicomTags.DimensionOrganizationSequence, new DicomDataset().SetString(DicomTags.DimensionOrganizationUID, DicomVR.UI, organization));
        ds.SetSequence(DicomTags.DimensionIndexSequence,
            DimensionIndex(organization, DicomTags.ReferencedSegmentNumber, DicomTags.SegmentIdentificationSequence, "ReferencedSegmentNumber"),
            DimensionIndex(organization, DicomTags.ImagePositionPatient, DicomTags.PlanePositionSequence, "ImagePositionPatient"));
    }

    private static void CopyText(DicomDataset from, DicomDataset to, DicomTag tag, DicomVR vr, bool type2)
    {
        var element = from[tag];
        if (element is null || element.IsSequence || element.Value.IsEmpty)
        {
            if (type2)
            {
                to.SetString(tag, vr, null);
            }
            return;
        }
        if (vr is DicomVR.PN or DicomVR.LO or DicomVR.SH)
        {
            // Decoded from the source's character set and re-encoded as UTF-8, which ISO_IR 192 declares.
            to.SetString(tag, vr, from.GetText(tag));
            return;
        }
        to.Set(new DicomElement(tag, vr, element.Value));
    }

    private static DicomDataset Reference(DicomDataset source) => new DicomDataset()
        .SetString(DicomTags.ReferencedSOPClassUID, DicomVR.UI, source.GetString(DicomTags.SOPClassUID))
        .SetString(DicomTags.ReferencedSOPInstanceUID, DicomVR.UI, source.GetString(DicomTags.SOPInstanceUID));

    private static DicomDataset DimensionIndex(string organization, DicomTag pointer, DicomTag group, string label) => new DicomDataset()
        .SetString(DicomTags.DimensionOrganizationUID, DicomVR.UI, organization)
        .Set(new DicomElement(DicomTags.DimensionIndexPointer, DicomVR.AT, Tag(pointer)))
        .Set(new DicomElement(DicomTags.FunctionalGroupPointer, DicomVR.AT, Tag(group)))
        .SetString(DicomTags.DimensionDescriptionLabel, DicomVR.LO, label);

    private static byte[] Tag(DicomTag tag)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt16LittleEndian(bytes, tag.Group);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2), tag.Element);
        return bytes;
    }

    private static DicomDataset SegmentItem(WrittenSegment segment, SegmentDefinition definition, SegmentationWriterOptions options)
    {
        var coding = Coding(definition);
        var item = new DicomDataset()
            .SetSequence(DicomTags.SegmentedPropertyCategoryCodeSequence, coding.Category.ToItem())
            .SetUInt16(DicomTags.SegmentNumber, (ushort)segment.Number)
            .SetString(DicomTags.SegmentLabel, DicomVR.LO, definition.Label)
            .SetString(DicomTags.SegmentAlgorithmType, DicomVR.CS, AlgorithmTypeCode(options.AlgorithmType))
            .SetUInt16(DicomTags.RecommendedDisplayCIELabValue, coding.Colour.L, coding.Colour.A, coding.Colour.B);
        var type = coding.Type.ToItem();
        if (coding.TypeModifier is { } modifier)
        {
            type.SetSequence(SegmentedPropertyTypeModifierCodeSequence, modifier.ToItem());
        }
        item.SetSequence(DicomTags.SegmentedPropertyTypeCodeSequence, type);
        if (definition.Description is { } description)
        {
            item.SetString(DicomTags.SegmentDescription, DicomVR.ST, description);
        }
        if (!string.IsNullOrWhiteSpace(options.AlgorithmName))
        {
            item.SetString(DicomTags.SegmentAlgorithmName, DicomVR.LO, options.AlgorithmName);
        }
        if (options.AlgorithmType != SegmentAlgorithmType.Manual)
        {
            // Required for AUTOMATIC and SEMIAUTOMATIC segments (PS3.3 C.8.20.2); highdicom reads the algorithm from here.
            var algorithm = new DicomDataset()
                .SetSequence(AlgorithmFamilyCodeSequence, (options.AlgorithmFamily ?? ArtificialIntelligence).ToItem())
                .SetString(AlgorithmName, DicomVR.LO, options.AlgorithmName)
                .SetString(AlgorithmVersion, DicomVR.LO, string.IsNullOrWhiteSpace(options.AlgorithmVersion) ? "unspecified" : options.AlgorithmVersion);
            if (!string.IsNullOrWhiteSpace(options.AlgorithmParameters))
            {
                algorithm.SetString(AlgorithmParameters, DicomVR.LT, options.AlgorithmParameters);
            }
            item.SetSequence(SegmentationAlgorithmIdentificationSequence, algorithm);
        }
        return item;
    }

    /// <summary>The definition's own codes and colour, completed from <see cref="KnownStructures"/>, else generic.</summary>
    private static (CodedConcept Category, CodedConcept Type, CodedConcept? TypeModifier, CieLabColour Colour) Coding(SegmentDefinition definition)
    {
        var named = KnownStructures.Find(definition.Label);
        // A configured type decides what the segment is: the name's table entry only fills in for a type it agrees with.
        var known = definition.Type is null || (named is not null && named.Type.Value == definition.Type.Value && named.Type.Scheme == definition.Type.Scheme)
            ? named
            : KnownStructures.FindByType(definition.Type);
        var type = definition.Type ?? known?.Type ?? KnownStructures.Tissue;
        var modifier = definition.TypeModifier ?? (definition.Type is null || known == named ? named?.TypeModifier : null);
        var colour = definition.Colour ?? (known is null ? FromPalette(definition.Value) : CieLabColour.FromRgb(known.Colour.R, known.Colour.G, known.Colour.B));
        return (definition.Category ?? known?.Category ?? KnownStructures.Tissue, type, modifier, colour);
    }

    private static CieLabColour FromPalette(byte value)
    {
        var (r, g, b) = Palette[(value - 1) % Palette.Length];
        return CieLabColour.FromRgb(r, g, b);
    }

    private static string AlgorithmTypeCode(SegmentAlgorithmType type) => type switch
    {
        SegmentAlgorithmType.Manual => "MANUAL",
        SegmentAlgorithmType.SemiAutomatic => "SEMIAUTOMATIC",
        SegmentAlgorithmType.Automatic => "AUTOMATIC",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    private static void WriteFunctionalGroups(DicomDataset ds, IReadOnlyList<DicomDataset> sources, int[] slices, List<(int Segment, byte Value, int Slice)> frames, VolumeGeometry g)
    {
        var first = sources[slices[0]];
        var thickness = first.GetDouble(DicomTags.SliceThickness) is { } t and > 0 ? t : g.Spacing.Z;
        var measures = new DicomDataset()
            .Set(first[DicomTags.PixelSpacing]!)
            .SetNumbers(DicomTags.SliceThickness, DicomVR.DS, [thickness])
            .SetNumbers(DicomTags.SpacingBetweenSlices, DicomVR.DS, [g.Spacing.Z]);
        var orientation = new DicomDataset().Set(first[DicomTags.ImageOrientationPatient]!);
        ds.SetSequence(DicomTags.SharedFunctionalGroupsSequence, new DicomDataset()
            .SetSequence(DicomTags.PlaneOrientationSequence, orientation)
            .SetSequence(DicomTags.PixelMeasuresSequence, measures));

        var items = new DicomDataset[frames.Count];
        for (var f = 0; f < frames.Count; f++)
        {
            var (segment, _, slice) = frames[f];
            var source = sources[slices[slice]];
            var reference = Reference(source)
                .SetSequence(DicomTags.PurposeOfReferenceCodeSequence, SourceImagePurpose.ToItem())
                .SetString(SpatialLocationsPreserved, DicomVR.CS, "YES");
            var derivation = new DicomDataset()
                .SetSequence(DicomTags.DerivationCodeSequence, SegmentationDerivation.ToItem())
                .SetSequence(DicomTags.SourceImageSequence, reference);
            items[f] = new DicomDataset()
                .SetSequence(DicomTags.DerivationImageSequence, derivation)
                .SetSequence(DicomTags.FrameContentSequence, new DicomDataset().SetUInt32(DicomTags.DimensionIndexValues, (uint)segment, (uint)(slice + 1)))
                // The source's own DS text, so readers matching by position compare equal strings.
                .SetSequence(DicomTags.PlanePositionSequence, new DicomDataset().Set(source[DicomTags.ImagePositionPatient]!))
                .SetSequence(DicomTags.SegmentIdentificationSequence, new DicomDataset().SetUInt16(DicomTags.ReferencedSegmentNumber, (ushort)segment));
        }
        ds.SetSequence(DicomTags.PerFrameFunctionalGroupsSequence, items);
    }

    /// <summary>
    /// Voxels per value on one slice. A label map is mostly long runs of one value, where a plain byte-by-byte histogram
    /// stalls on incrementing the same counter; 32 voxels of one value are counted at once.
    /// </summary>
    // Optimised from the first call: the writer runs once per prediction, too rarely for tiered compilation to reach these loops.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static long[] Histogram(ReadOnlySpan<byte> slice)
    {
        var counts = new long[256];
        var p = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; p + 32 <= slice.Length; p += 32)
            {
                var chunk = Vector256.Create(slice.Slice(p, 32));
                var first = slice[p];
                if (Vector256.EqualsAll(chunk, Vector256.Create(first)))
                {
                    counts[first] += 32;
                    continue;
                }
                foreach (var v in slice.Slice(p, 32))
                {
                    counts[v]++;
                }
            }
        }
        foreach (var v in slice[p..])
        {
            counts[v]++;
        }
        return counts;
    }

    /// <summary>
    /// Frames one after the other in one bit stream, LSB first, no per-frame padding (PS3.5 8.1.1). 32 voxels at a time:
    /// a vector compare with the frame's value gives one byte per voxel whose top bits, gathered, are exactly the 32
    /// bits in stream order. When a frame starts on a byte (Rows × Columns a multiple of 8, as for 512 × 512) frames own
    /// their bytes and are packed in parallel; otherwise neighbours share a byte and frames are packed one by one.
    /// </summary>
    private static byte[] PackFrames(Volume labelMap, List<(int Segment, byte Value, int Slice)> frames, int n)
    {
        var totalBits = (long)frames.Count * n;
        var length = (totalBits + 7) / 8;
        var packed = new byte[length + (length % 2)];
        void Pack(int f)
        {
            var (_, value, slice) = frames[f];
            PackFrame(labelMap.SliceBytes(slice), value, packed, (long)f * n);
        }
        if (n % 8 == 0)
        {
            Parallelism.For(frames.Count, (f, _) => Pack(f));
        }
        else
        {
            for (var f = 0; f < frames.Count; f++)
            {
                Pack(f);
            }
        }
        return packed;
    }

    /// <summary>ORs the bits "voxel == value" of one frame into <paramref name="packed"/> from bit <paramref name="bit"/> on.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void PackFrame(ReadOnlySpan<byte> voxels, byte value, byte[] packed, long bit)
    {
        var p = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var target = Vector256.Create(value);
            for (; p + 32 <= voxels.Length; p += 32, bit += 32)
            {
                var mask = Vector256.Equals(Vector256.Create(voxels.Slice(p, 32)), target).ExtractMostSignificantBits();
                if (mask == 0)
                {
                    continue;
                }
                var at = (int)(bit >> 3);
                var shift = (int)(bit & 7);
                // 32 bits from a bit offset within a byte span at most 5 bytes.
                var bits = (ulong)mask << shift;
                for (var i = 0; bits != 0; i++, bits >>= 8)
                {
                    packed[at + i] |= (byte)bits;
                }
            }
        }
        for (; p < voxels.Length; p++, bit++)
        {
            if (voxels[p] == value)
            {
                packed[bit >> 3] |= (byte)(1 << (int)(bit & 7));
            }
        }
    }
}
