using OrthancSeg.Dicom.Volumes;

namespace OrthancSeg.Dicom.Tests.Volumes;

public sealed class SeriesVolumeBuilderTests
{
    private static void AssertNear(Vector3D expected, Vector3D actual, double tolerance = 1e-6) =>
        Assert.True((expected - actual).Length <= tolerance, $"expected {expected}, got {actual}");

    private static short[] Int16Slice(SeriesVolume v, int k) =>
        v.Volume.AsInt16().Slice(k * v.Volume.Geometry.SliceVoxelCount, v.Volume.Geometry.SliceVoxelCount).ToArray();

    private static DicomException Refused(List<DicomFile> files) => Assert.Throws<DicomException>(() => SeriesVolumeBuilder.Build(files));

    [Fact]
    public void Axial_series_is_sorted_by_position_not_by_file_or_instance_order()
    {
        // Instance numbers 1..4 at z = 10, 4, 7, 1: the volume must run 1, 4, 7, 10.
        var files = SyntheticSeries.Create(3, 4, SyntheticSeries.AxialPositions(10, 4, 7, 1));
        files.Reverse();

        var result = SeriesVolumeBuilder.Build(files);

        Assert.Equal([SyntheticSeries.SopUid(4), SyntheticSeries.SopUid(2), SyntheticSeries.SopUid(3), SyntheticSeries.SopUid(1)], result.SopInstanceUids);
        var g = result.Volume.Geometry;
        Assert.Equal((4, 3, 4), (g.Columns, g.Rows, g.Slices));
        AssertNear(new Vector3D(0.75, 0.5, 3), g.Spacing);
        AssertNear(new Vector3D(-100, -80, 1), g.Origin);
        AssertNear(new Vector3D(0, 0, 1), g.SliceDirection);
        Assert.Equal(VoxelType.Int16, result.Volume.Type);
        // Slice 0 is instance index 3 (z = 1): value 300 + r*10 + c; voxel (c=2, r=1) = 312.
        Assert.Equal(312, Int16Slice(result, 0)[(1 * 4) + 2]);
        Assert.Equal(12, Int16Slice(result, 3)[(1 * 4) + 2]);
        Assert.Equal(SyntheticSeries.FrameOfReferenceUid, result.FrameOfReferenceUid);
        Assert.Equal(SyntheticSeries.SeriesUid, result.SeriesInstanceUid);
        Assert.Equal(SyntheticSeries.StudyUid, result.StudyInstanceUid);
        Assert.Equal("4×3×4 voxels, spacing 0.75×0.5×3 mm, axial, int16", result.Summary);
        Assert.Equal(4, result.Grid.SlicePositions.Count);
        AssertNear(new Vector3D(-100, -80, 10), result.Grid.SlicePositions[3]);
    }

    [Fact]
    public void Axial_series_acquired_head_first_descending_still_ascends_along_the_normal()
    {
        var files = SyntheticSeries.Create(2, 2, SyntheticSeries.AxialPositions(-10, -12.5, -15, -17.5));

        var result = SeriesVolumeBuilder.Build(files);

        Assert.Equal(SyntheticSeries.SopUid(4), result.SopInstanceUids[0]);
        Assert.Equal(SyntheticSeries.SopUid(1), result.SopInstanceUids[3]);
        AssertNear(new Vector3D(-100, -80, -17.5), result.Volume.Geometry.Origin);
        Assert.Equal(2.5, result.Volume.Geometry.Spacing.Z, 9);
        Assert.Equal(300, Int16Slice(result, 0)[0]);
    }

    [Fact]
    public void Coronal_series_gets_a_posterior_pointing_normal()
    {
        // Row → patient left (+x), column → feet (−z): normal = x × (−z) = +y (posterior).
        var positions = new[] { 30.0, 10, 20 }.Select(y => new Vector3D(-50, y, 60)).ToList();
        var files = SyntheticSeries.Create(2, 3, positions, [1, 0, 0, 0, 0, -1]);

        var result = SeriesVolumeBuilder.Build(files);

        AssertNear(new Vector3D(0, 1, 0), result.Volume.Geometry.SliceDirection);
        AssertNear(new Vector3D(-50, 10, 60), result.Volume.Geometry.Origin);
        Assert.Equal([SyntheticSeries.SopUid(2), SyntheticSeries.SopUid(3), SyntheticSeries.SopUid(1)], result.SopInstanceUids);
        Assert.Contains("coronal", result.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void Sagittal_series_ascends_towards_patient_right()
    {
        // Row → posterior (+y), column → feet (−z): normal = y × (−z) = −x, so ascending means decreasing x.
        var positions = new[] { -20.0, 0, 20 }.Select(x => new Vector3D(x, -90, 80)).ToList();
        var files = SyntheticSeries.Create(2, 2, positions, [0, 1, 0, 0, 0, -1]);

        var result = SeriesVolumeBuilder.Build(files);

        AssertNear(new Vector3D(-1, 0, 0), result.Volume.Geometry.SliceDirection);
        Assert.Equal([SyntheticSeries.SopUid(3), SyntheticSeries.SopUid(2), SyntheticSeries.SopUid(1)], result.SopInstanceUids);
        Assert.Equal(20, result.Volume.Geometry.Spacing.Z, 9);
        Assert.Contains("sagittal", result.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void Oblique_series_keeps_its_tilted_orthonormal_grid()
    {
        var angle = 30 * Math.PI / 180;
        var row = new Vector3D(1, 0, 0);
        var column = new Vector3D(0, Math.Cos(angle), Math.Sin(angle));
        var normal = row.Cross(column);
        var origin = new Vector3D(5, 6, 7);
        var positions = Enumerable.Range(0, 4).Select(k => origin + (normal * (k * 1.5))).ToList();
        var files = SyntheticSeries.Create(3, 3, positions, [row.X, row.Y, row.Z, column.X, column.Y, column.Z]);

        var result = SeriesVolumeBuilder.Build(files);

        var g = result.Volume.Geometry;
        AssertNear(normal, g.SliceDirection, 1e-6);
        AssertNear(column, g.ColumnDirection, 1e-6);
        Assert.Equal(1.5, g.Spacing.Z, 6);
        AssertNear(positions[3], g.PositionOf(0, 0, 3), 1e-4);
        Assert.Contains("oblique", result.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void CT_rescale_with_unit_slope_and_integral_intercept_gives_int16_hounsfield_units()
    {
        var files = SyntheticSeries.Create(2, 2, SyntheticSeries.AxialPositions(0, 1), stored: (i, r, c) => (ushort)(i == 0 ? 0 : 4095),
            customise: (_, ds) =>
            {
                ds.SetUInt16(DicomTags.BitsStored, 12);
                ds.SetUInt16(DicomTags.HighBit, 11);
                ds.SetNumbers(DicomTags.RescaleIntercept, DicomVR.DS, [-1024]);
                ds.SetNumbers(DicomTags.RescaleSlope, DicomVR.DS, [1]);
            });

        var result = SeriesVolumeBuilder.Build(files);

        Assert.Equal(VoxelType.Int16, result.Volume.Type);
        Assert.Equal(-1024, Int16Slice(result, 0)[0]);
        Assert.Equal(3071, Int16Slice(result, 1)[3]);
    }

    [Fact]
    public void Signed_12_bit_values_are_sign_extended_and_bits_above_high_bit_ignored()
    {
        // 0xF800 has garbage in the unused top bits; 0x0FFF is −1 in 12-bit two's complement.
        var files = SyntheticSeries.Create(1, 2, SyntheticSeries.AxialPositions(0, 1), stored: (i, r, c) => c == 0 ? (ushort)0x0FFF : (ushort)0xF005,
            customise: (_, ds) =>
            {
                ds.SetUInt16(DicomTags.BitsStored, 12);
                ds.SetUInt16(DicomTags.HighBit, 11);
                ds.SetUInt16(DicomTags.PixelRepresentation, 1);
            });

        var result = SeriesVolumeBuilder.Build(files);

        Assert.Equal([-1, 5], Int16Slice(result, 0));
    }

    [Fact]
    public void Fractional_slope_and_per_slice_intercepts_give_float32()
    {
        var files = SyntheticSeries.Create(1, 2, SyntheticSeries.AxialPositions(0, 1), stored: (i, r, c) => (ushort)(10 + c),
            customise: (i, ds) =>
            {
                ds.SetNumbers(DicomTags.RescaleSlope, DicomVR.DS, [0.5]);
                ds.SetNumbers(DicomTags.RescaleIntercept, DicomVR.DS, [i * 100]);
            });

        var result = SeriesVolumeBuilder.Build(files);

        Assert.Equal(VoxelType.Float32, result.Volume.Type);
        Assert.Equal([5f, 5.5f, 105f, 105.5f], result.Volume.AsFloat32().ToArray());
        Assert.EndsWith("float32", result.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void Values_beyond_int16_fall_back_to_float32()
    {
        var files = SyntheticSeries.Create(1, 2, SyntheticSeries.AxialPositions(0, 1), stored: (i, r, c) => (ushort)(c == 0 ? 40000 : 7));

        var result = SeriesVolumeBuilder.Build(files);

        Assert.Equal(VoxelType.Float32, result.Volume.Type);
        Assert.Equal([40000f, 7f, 40000f, 7f], result.Volume.AsFloat32().ToArray());
    }

    [Fact]
    public void Localizers_are_dropped_with_a_warning()
    {
        var files = SyntheticSeries.Create(2, 2, SyntheticSeries.AxialPositions(0, 1, 2, 50),
            customise: (i, ds) =>
            {
                if (i == 3)
                {
                    ds.SetStrings(DicomTags.ImageType, DicomVR.CS, ["ORIGINAL", "PRIMARY", "LOCALIZER"]);
                    ds.SetNumbers(DicomTags.ImageOrientationPatient, DicomVR.DS, [1, 0, 0, 0, 0, -1]);
                }
            });

        var result = SeriesVolumeBuilder.Build(files);

        Assert.Equal(3, result.Volume.Geometry.Slices);
        Assert.Contains(result.Warnings, w => w.Contains("localizer", StringComparison.Ordinal));
    }

    [Fact]
    public void Single_slice_is_a_volume_one_slice_thick()
    {
        var files = SyntheticSeries.Create(2, 2, SyntheticSeries.AxialPositions(5));

        var result = SeriesVolumeBuilder.Build(files);

        Assert.Equal(1, result.Volume.Geometry.Slices);
        Assert.Equal(2, result.Volume.Geometry.Spacing.Z);
    }

    [Fact]
    public void Missing_slice_is_refused_naming_the_gap()
    {
        var e = Refused(SyntheticSeries.Create(2, 2, SyntheticSeries.AxialPositions(0, 2, 4, 8, 10)));

        Assert.Contains("slice missing between positions 4 and 8 mm", e.Message, StringComparison.Ordinal);
        Assert.Contains(SyntheticSeries.SopUid(3), e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Uneven_spacing_is_refused()
    {
        var e = Refused(SyntheticSeries.Create(2, 2, SyntheticSeries.AxialPositions(0, 2, 4, 5.5, 7.5)));

        Assert.Contains("Uneven slice spacing", e.Message, StringComparison.Ordinal);
        Assert.Contains("gap of 1.5 mm between positions 4 and 5.5 mm", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Spacing_jitter_within_tolerance_is_accepted()
    {
        var result = SeriesVolumeBuilder.Build(SyntheticSeries.Create(2, 2, SyntheticSeries.AxialPositions(0, 2.005, 4, 6.004)));

        Assert.Equal(6.004 / 3, result.Volume.Geometry.Spacing.Z, 9);
    }

    [Fact]
    public void Gantry_tilt_is_refused()
    {
        // 15° tilt: each 2 mm step along z also moves 0.536 mm along y.
        var positions = Enumerable.Range(0, 4).Select(k => new Vector3D(0, k * 2 * Math.Tan(15 * Math.PI / 180), k * 2.0)).ToList();
        var e = Refused(SyntheticSeries.Create(2, 2, positions, customise: (_, ds) => ds.SetNumbers(DicomTags.GantryDetectorTilt, DicomVR.DS, [15])));

        Assert.Contains("gantry tilt 15°", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Mixed_orientation_is_refused()
    {
        var e = Refused(SyntheticSeries.Create(2, 2, SyntheticSeries.AxialPositions(0, 1, 2),
            customise: (i, ds) => { if (i == 1) { ds.SetNumbers(DicomTags.ImageOrientationPatient, DicomVR.DS, [1, 0, 0, 0, 0.9, 0.43589]); } }));

        Assert.Contains("Mixed orientation", e.Message, StringComparison.Ordinal);
        Assert.Contains(SyntheticSeries.SopUid(2), e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Mixed_rows_and_columns_are_refused()
    {
        var files = SyntheticSeries.Create(2, 2, SyntheticSeries.AxialPositions(0, 1));
        files.AddRange(SyntheticSeries.Create(3, 2, SyntheticSeries.AxialPositions(0, 1, 2)).Skip(2)
            .Select(f => { f.Dataset.SetString(DicomTags.SOPInstanceUID, DicomVR.UI, "1.2.3.99"); return f; }));

        var e = Refused(files);

        Assert.Contains("Mixed Rows/Columns", e.Message, StringComparison.Ordinal);
        Assert.Contains("1.2.3.99", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Mixed_pixel_spacing_is_refused()
    {
        var e = Refused(SyntheticSeries.Create(2, 2, SyntheticSeries.AxialPositions(0, 1, 2),
            customise: (i, ds) => { if (i == 2) { ds.SetNumbers(DicomTags.PixelSpacing, DicomVR.DS, [0.5, 0.8]); } }));

        Assert.Contains("Mixed PixelSpacing", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Two_images_at_one_position_are_refused_as_phases_or_echoes()
    {
        var e = Refused(SyntheticSeries.Create(2, 2, SyntheticSeries.AxialPositions(0, 1, 1, 2)));

        Assert.Contains("Several images at one position", e.Message, StringComparison.Ordinal);
        Assert.Contains(SyntheticSeries.SopUid(2), e.Message, StringComparison.Ordinal);
        Assert.Contains(SyntheticSeries.SopUid(3), e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Colour_images_are_refused()
    {
        var e = Refused(SyntheticSeries.Create(2, 2, SyntheticSeries.AxialPositions(0, 1), customise: (_, ds) =>
        {
            ds.SetUInt16(DicomTags.SamplesPerPixel, 3);
            ds.SetString(DicomTags.PhotometricInterpretation, DicomVR.CS, "RGB");
        }));

        Assert.Contains("colour image", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Series_of_only_localizers_has_no_image_instances()
    {
        var e = Refused(SyntheticSeries.Create(2, 2, SyntheticSeries.AxialPositions(0, 1),
            customise: (_, ds) => ds.SetStrings(DicomTags.ImageType, DicomVR.CS, ["ORIGINAL", "PRIMARY", "LOCALIZER"])));

        Assert.Contains("no image instances", e.Message, StringComparison.Ordinal);
        Assert.Contains("2 localizer(s) dropped", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Images_without_position_are_refused()
    {
        var e = Refused(SyntheticSeries.Create(2, 2, SyntheticSeries.AxialPositions(0, 1, 2),
            customise: (i, ds) => { if (i == 1) { ds.Remove(DicomTags.ImagePositionPatient); } }));

        Assert.Contains("lack ImagePositionPatient", e.Message, StringComparison.Ordinal);
        Assert.Contains(SyntheticSeries.SopUid(2), e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Truncated_pixel_data_is_refused()
    {
        var e = Refused(SyntheticSeries.Create(2, 2, SyntheticSeries.AxialPositions(0, 1),
            customise: (i, ds) => { if (i == 1) { ds.SetBytes(DicomTags.PixelData, DicomVR.OW, new byte[4]); } }));

        Assert.Contains($"Image #2 {SyntheticSeries.SopUid(2)}: PixelData (7FE0,0010) holds 4 bytes", e.Message, StringComparison.Ordinal);
    }
}

public sealed class SeriesVolumeBuilderFileTests
{
    [Fact]
    public void Rle_compressed_slices_are_decoded_like_native_ones()
    {
        var native = SyntheticSeries.Create(3, 4, SyntheticSeries.AxialPositions(0, 1, 2));
        var compressed = SyntheticSeries.Create(3, 4, SyntheticSeries.AxialPositions(0, 1, 2)).Select(f =>
        {
            var raw = f.Dataset[DicomTags.PixelData]!.Value;
            f.Dataset.Set(DicomElement.Encapsulated(DicomTags.PixelData, DicomVR.OB, [ReadOnlyMemory<byte>.Empty, RleCodec.Encode(raw.Span, 3, 4, 1, 16)]));
            return new DicomFile(SyntheticSeries.Meta(TransferSyntaxes.RleLossless), f.Dataset);
        }).ToList();

        Assert.Equal(SeriesVolumeBuilder.Build(native).Volume.Data, SeriesVolumeBuilder.Build(compressed).Volume.Data);
    }

    [Fact]
    public void Series_grid_survives_json_so_a_case_can_keep_its_slice_order()
    {
        var grid = SeriesVolumeBuilder.Build(SyntheticSeries.Create(2, 3, SyntheticSeries.AxialPositions(4, 0, 2))).Grid;

        var back = System.Text.Json.JsonSerializer.Deserialize<SeriesGrid>(System.Text.Json.JsonSerializer.Serialize(grid))!;

        Assert.Equal(grid.SopInstanceUids, back.SopInstanceUids);
        Assert.Equal(grid.SlicePositions, back.SlicePositions);
        Assert.Equal(grid.Geometry, back.Geometry);
        Assert.Equal(grid.FrameOfReferenceUid, back.FrameOfReferenceUid);
    }
}
