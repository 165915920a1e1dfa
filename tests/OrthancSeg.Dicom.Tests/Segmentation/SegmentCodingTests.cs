using OrthancSeg.Dicom.Segmentation;
using OrthancSeg.Dicom.Tests.Tools;
using OrthancSeg.Dicom.Tests.Volumes;
using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Tests.Segmentation;

/// <summary>How the writer describes segments and the algorithm: coded category/type, laterality, colours, algorithm identification.</summary>
public sealed class SegmentCodingTests
{
    private static readonly List<DicomFile> Files = SyntheticSeries.Create(4, 4, SyntheticSeries.AxialPositions(0, 2, 4));

    private static DicomDataset Write(SegmentDefinition[] definitions, SegmentationWriterOptions options)
    {
        var series = SeriesVolumeBuilder.Build(Files);
        var map = Volume.Allocate(series.Volume.Geometry, VoxelType.UInt8);
        foreach (var definition in definitions)
        {
            map.Data[definition.Value] = definition.Value; // one voxel of each value on slice 0
        }
        var result = SegmentationWriter.Write(map, Files.Select(f => f.Dataset).ToList(), definitions, options);
        Assert.True(result.Written, result.NotWrittenReason);
        return DicomReader.Read(DicomWriter.ToBytes(DicomFile.Create(result.Segmentation!))).Dataset;
    }

    private static readonly SegmentationWriterOptions Model = new(SegmentAlgorithmType.Automatic, "liver-ct-7", AlgorithmVersion: "3d_fullres folds 0-4");

    private static (string? Value, string? Scheme, string? Meaning) Code(DicomDataset? item) =>
        (item?.GetString(DicomTags.CodeValue), item?.GetString(DicomTags.CodingSchemeDesignator), item?.GetString(DicomTags.CodeMeaning));

    private static readonly DicomTag TypeModifier = new(0x0062, 0x0011);
    private static readonly DicomTag AlgorithmIdentification = new(0x0062, 0x0007);

    [Fact]
    public void Plain_organ_names_get_their_SNOMED_codes_laterality_and_anatomy_colours()
    {
        var ds = Write([new(1, "Liver"), new(2, "kidney_left"), new(3, "Right Lung"), new(4, "tumour"), new(5, "left ventricle wall")], Model);
        var segments = ds.GetSequence(DicomTags.SegmentSequence);

        Assert.Equal(("123037004", "SCT", "Anatomical Structure"), Code(segments[0].GetFirstItem(DicomTags.SegmentedPropertyCategoryCodeSequence)));
        Assert.Equal(("10200004", "SCT", "Liver"), Code(segments[0].GetFirstItem(DicomTags.SegmentedPropertyTypeCodeSequence)));
        Assert.Null(segments[0].GetFirstItem(DicomTags.SegmentedPropertyTypeCodeSequence)!.GetFirstItem(TypeModifier));
        var kidney = segments[1].GetFirstItem(DicomTags.SegmentedPropertyTypeCodeSequence)!;
        Assert.Equal(("64033007", "SCT", "Kidney"), Code(kidney));
        Assert.Equal(("7771000", "SCT", "Left"), Code(kidney.GetFirstItem(TypeModifier)));
        Assert.Equal(("24028007", "SCT", "Right"), Code(segments[2].GetFirstItem(DicomTags.SegmentedPropertyTypeCodeSequence)!.GetFirstItem(TypeModifier)));
        Assert.Equal(("49755003", "SCT", "Morphologically Abnormal Structure"), Code(segments[3].GetFirstItem(DicomTags.SegmentedPropertyCategoryCodeSequence)));
        Assert.Equal(("108369006", "SCT", "Neoplasm"), Code(segments[3].GetFirstItem(DicomTags.SegmentedPropertyTypeCodeSequence)));
        // A name the table does not know stays generic rather than guessed.
        Assert.Equal(("85756007", "SCT", "Tissue"), Code(segments[4].GetFirstItem(DicomTags.SegmentedPropertyTypeCodeSequence)));

        var liver = CieLabColour.FromRgb(221, 130, 101);
        Assert.Equal([liver.L, liver.A, liver.B], segments[0].GetDoubles(DicomTags.RecommendedDisplayCIELabValue).Select(v => (ushort)v));
        Assert.Equal(5, segments.Select(s => string.Join(',', s.GetDoubles(DicomTags.RecommendedDisplayCIELabValue))).Distinct().Count());
    }

    [Fact]
    public void Configured_codes_and_colours_win_over_the_defaults()
    {
        var portal = new CodedConcept("32764006", "SCT", "Portal vein");
        var vessel = new CodedConcept("59820001", "SCT", "Blood vessel");
        var colour = CieLabColour.FromRgb(0, 0, 255);
        var ds = Write([new(1, "liver", Category: vessel, Type: portal, Colour: colour), new(2, "kidney", TypeModifier: KnownStructures.Right),
            new(3, "organ", Type: new CodedConcept("10200004", "SCT", "Liver"))], Model);
        var segments = ds.GetSequence(DicomTags.SegmentSequence);

        Assert.Equal(("59820001", "SCT", "Blood vessel"), Code(segments[0].GetFirstItem(DicomTags.SegmentedPropertyCategoryCodeSequence)));
        Assert.Equal(("32764006", "SCT", "Portal vein"), Code(segments[0].GetFirstItem(DicomTags.SegmentedPropertyTypeCodeSequence)));
        Assert.Equal([colour.L, colour.A, colour.B], segments[0].GetDoubles(DicomTags.RecommendedDisplayCIELabValue).Select(v => (ushort)v));
        Assert.Equal(("24028007", "SCT", "Right"), Code(segments[1].GetFirstItem(DicomTags.SegmentedPropertyTypeCodeSequence)!.GetFirstItem(TypeModifier)));
        // A configured type the table knows brings its category and colour, whatever the segment is called.
        Assert.Equal(("123037004", "SCT", "Anatomical Structure"), Code(segments[2].GetFirstItem(DicomTags.SegmentedPropertyCategoryCodeSequence)));
        var liver = CieLabColour.FromRgb(221, 130, 101);
        Assert.Equal([liver.L, liver.A, liver.B], segments[2].GetDoubles(DicomTags.RecommendedDisplayCIELabValue).Select(v => (ushort)v));
    }

    [Fact]
    public void Automatic_segments_name_the_model_and_its_version_and_the_series_says_which_model_made_it()
    {
        var ds = Write([new(1, "liver")], Model with { AlgorithmParameters = "nnUNetv2_predict -c 3d_fullres -f 0 1 2 3 4" });
        var segment = ds.GetSequence(DicomTags.SegmentSequence).Single();

        Assert.Equal("Segmentation by liver-ct-7", ds.GetString(DicomTags.SeriesDescription));
        Assert.Equal(("AUTOMATIC", "liver-ct-7"), (segment.GetString(DicomTags.SegmentAlgorithmType), segment.GetString(DicomTags.SegmentAlgorithmName)));
        var algorithm = segment.GetFirstItem(AlgorithmIdentification)!;
        Assert.Equal(("123110", "DCM", "Artificial Intelligence"), Code(algorithm.GetFirstItem(new DicomTag(0x0066, 0x002F))));
        Assert.Equal("liver-ct-7", algorithm.GetString(new DicomTag(0x0066, 0x0036)));
        Assert.Equal("3d_fullres folds 0-4", algorithm.GetString(new DicomTag(0x0066, 0x0031)));
        Assert.Equal("nnUNetv2_predict -c 3d_fullres -f 0 1 2 3 4", algorithm.GetText(new DicomTag(0x0066, 0x0032)));
    }

    [Fact]
    public void Manual_segments_carry_no_algorithm_identification()
    {
        var ds = Write([new(1, "liver")], new SegmentationWriterOptions(SegmentAlgorithmType.Manual, ContentCreatorName: "Doe^Jane"));
        var segment = ds.GetSequence(DicomTags.SegmentSequence).Single();

        Assert.Equal("MANUAL", segment.GetString(DicomTags.SegmentAlgorithmType));
        Assert.Null(segment.GetFirstItem(AlgorithmIdentification));
        Assert.Equal("Segmentation", ds.GetString(DicomTags.SeriesDescription));
        Assert.Equal("Doe^Jane", ds.GetText(DicomTags.ContentCreatorName));
    }

    [Theory]
    [InlineData("NNUNET-SEG", "content label")]
    [InlineData("MORE_THAN_SIXTEEN_CHARS", "content label")]
    public void A_content_label_that_is_no_code_string_is_refused(string label, string expected)
    {
        var e = Assert.Throws<DicomException>(() => Write([new(1, "liver")], Model with { ContentLabel = label }));

        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_segment_name_longer_than_DICOM_allows_is_refused_with_its_value()
    {
        var e = Assert.Throws<DicomException>(() => Write([new(1, new string('x', 65))], Model));

        Assert.Contains("segment name of label value 1 is 65 characters", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_default_code_is_the_PS3_16_concept_in_the_context_group_a_SEG_uses()
    {
        // pydicom ships DICOM PS3.16's concept dictionary with the context groups (CIDs) each concept belongs to.
        var codings = KnownStructures.Names.Select(n => KnownStructures.Find(n)!).ToList();
        var lines = codings.Select(c => $"{c.Category.Value}|{c.Category.Meaning}|7150")
            .Concat(codings.Select(c => $"{c.Type.Value}|{c.Type.Meaning}|7151"))
            .Concat([$"{KnownStructures.Left.Value}|Left|244", $"{KnownStructures.Right.Value}|Right|244", $"{KnownStructures.Tissue.Value}|Tissue|7151"])
            .Distinct()
            .ToList();
        Assert.All(codings, c => Assert.Equal("SCT", c.Type.Scheme));

        var output = ExternalTool.RunPython("""
            import sys
            from pydicom.sr._concepts_dict import concepts
            found = {}
            for entries in concepts['SCT'].values():
                for code, (meaning, cids) in entries.items():
                    found.setdefault(code, []).append((meaning, cids))
            for line in sys.argv[1:]:
                code, meaning, cid = line.split('|')
                ok = any(m == meaning and int(cid) in cids for m, cids in found.get(code, []))
                print(('ok ' if ok else 'WRONG ') + line + ' ' + repr(found.get(code)))
            """, [.. lines]);

        Assert.DoesNotContain("WRONG", output, StringComparison.Ordinal);
        Assert.Equal(lines.Count, output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Theory]
    [InlineData("Kidney L", "Kidney", "Left")]
    [InlineData("r-kidney", "Kidney", "Right")]
    [InlineData("URINARY_BLADDER", "Bladder", null)]
    [InlineData("prostate", "Prostate", null)]
    public void Names_are_matched_whatever_their_spelling(string name, string type, string? side)
    {
        var coding = KnownStructures.Find(name)!;

        Assert.Equal((type, side), (coding.Type.Meaning, coding.TypeModifier?.Meaning));
    }

    [Theory]
    [InlineData("left and right kidney")]
    [InlineData("segment 1")]
    [InlineData("")]
    public void Names_that_are_no_single_known_structure_are_not_coded(string name) => Assert.Null(KnownStructures.Find(name));
}

public sealed class SegmentCodingParseTests
{
    [Theory]
    // CIELab (D65) of the sRGB primaries as published by Bruce Lindbloom's colour calculator, independent of dcmjs.
    [InlineData(255, 0, 0, 53.2408, 80.0925, 67.2032)]
    [InlineData(0, 255, 0, 87.7347, -86.1827, 83.1793)]
    [InlineData(0, 0, 255, 32.2970, 79.1875, -107.8602)]
    [InlineData(128, 128, 128, 53.5850, 0, 0)]
    public void Rgb_becomes_the_textbook_CIELab_scaled_as_DICOM_scales_it(byte r, byte g, byte b, double l, double a, double bb)
    {
        var colour = CieLabColour.FromRgb(r, g, b);

        Assert.Equal(l, colour.L * 100.0 / 65535, 0.05);
        Assert.Equal(a, (colour.A * 255.0 / 65535) - 128, 0.05);
        Assert.Equal(bb, (colour.B * 255.0 / 65535) - 128, 0.05);
    }

    [Fact]
    public void Workflow_codes_and_colours_parse_and_bad_ones_are_refused_with_the_text()
    {
        Assert.Equal(new CodedConcept("10200004", "SCT", "Liver"), CodedConcept.Parse("10200004^SCT^Liver"));
        Assert.Equal(CieLabColour.FromRgb(0xdd, 0x82, 0x65), CieLabColour.FromHex("#dd8265"));
        Assert.Contains("'10200004^SCT' is not a coded concept", Assert.Throws<DicomException>(() => CodedConcept.Parse("10200004^SCT")).Message, StringComparison.Ordinal);
        Assert.Contains("'red' is not a colour", Assert.Throws<DicomException>(() => CieLabColour.FromHex("red")).Message, StringComparison.Ordinal);
    }
}
