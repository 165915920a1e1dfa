using OrthancSeg.Dicom.Nifti;
using OrthancSeg.Dicom.Volumes;
using OrthancSeg.Worker.Datasets;

namespace OrthancSeg.Worker.Tests.Datasets;

/// <summary>The checks of nnU-Net's verify_dataset_integrity, on small datasets written with the worker's NIfTI writer.</summary>
public sealed class DatasetVerifierTests : IDisposable
{
    private const string DatasetJson = """
        {"channel_names": {"0": "CT"}, "labels": {"background": 0, "liver": 1, "tumor": 2}, "numTraining": 2, "file_ending": ".nii.gz"}
        """;

    private static readonly VolumeGeometry Grid = new(4, 3, 2, new Vector3D(0.8, 0.8, 2.5), new Vector3D(-10, -10, 100),
        new Vector3D(1, 0, 0), new Vector3D(0, 1, 0), new Vector3D(0, 0, 1));

    private readonly TempDirectory _dataset = new();

    public DatasetVerifierTests()
    {
        Directory.CreateDirectory(Path.Combine(_dataset.Path, "imagesTr"));
        Directory.CreateDirectory(Path.Combine(_dataset.Path, "labelsTr"));
        _dataset.Write("dataset.json", DatasetJson);
        foreach (var name in new[] { "case_a", "case_b" })
        {
            WriteImage(name, Grid);
            WriteLabel(name, Grid, 2);
        }
    }

    public void Dispose() => _dataset.Dispose();

    [Fact]
    public void Dataset_written_by_the_worker_passes()
    {
        var result = DatasetVerifier.Verify(_dataset.Path, 1, CancellationToken.None);
        Assert.True(result.Passed, string.Join("; ", result.Problems));
        Assert.Equal(4, result.CheckedFiles);
    }

    [Fact]
    public void Label_value_outside_dataset_json_is_an_error_naming_the_file()
    {
        WriteLabel("case_b", Grid, 3);
        var result = DatasetVerifier.Verify(_dataset.Path, 1, CancellationToken.None);
        Assert.False(result.Passed);
        Assert.Contains(result.Problems, p => p.StartsWith("Unexpected labels found in file labelsTr/case_b.nii.gz", StringComparison.Ordinal));
    }

    [Fact]
    public void Label_on_another_grid_is_a_shape_error()
    {
        WriteLabel("case_a", new VolumeGeometry(4, 3, 3, Grid.Spacing, Grid.Origin, Grid.RowDirection, Grid.ColumnDirection, Grid.SliceDirection), 1);
        var result = DatasetVerifier.Verify(_dataset.Path, 1, CancellationToken.None);
        Assert.Contains(result.Problems, p => p.StartsWith("Shape mismatch", StringComparison.Ordinal) && p.Contains("case_a", StringComparison.Ordinal));
    }

    [Fact]
    public void Label_with_another_origin_is_an_affine_error()
    {
        WriteLabel("case_a", new VolumeGeometry(4, 3, 2, Grid.Spacing, new Vector3D(-10, -10, 101), Grid.RowDirection, Grid.ColumnDirection, Grid.SliceDirection), 1);
        var result = DatasetVerifier.Verify(_dataset.Path, 1, CancellationToken.None);
        Assert.Contains(result.Problems, p => p.StartsWith("Affine mismatch", StringComparison.Ordinal));
    }

    [Fact]
    public void Missing_label_and_wrong_count_are_errors()
    {
        File.Delete(Path.Combine(_dataset.Path, "labelsTr", "case_b.nii.gz"));
        WriteImage("case_c", Grid);
        var result = DatasetVerifier.Verify(_dataset.Path, 1, CancellationToken.None);
        Assert.Contains("Did not find the expected number of training cases (2). Found 3 instead.", result.Problems);
        Assert.Contains(result.Problems, p => p.StartsWith("not all training cases have a label file", StringComparison.Ordinal) && p.Contains("case_b", StringComparison.Ordinal));
    }

    [Fact]
    public void Labels_that_are_not_consecutive_are_an_error()
    {
        _dataset.Write("dataset.json", DatasetJson.Replace("\"tumor\": 2", "\"tumor\": 3", StringComparison.Ordinal));
        var result = DatasetVerifier.Verify(_dataset.Path, 1, CancellationToken.None);
        Assert.Contains(result.Problems, p => p.StartsWith("Labels must be in consecutive order", StringComparison.Ordinal));
    }

    [Fact]
    public void NaN_in_an_image_is_an_error()
    {
        var volume = Volume.Allocate(Grid, VoxelType.Float32);
        volume.AsFloat32()[5] = float.NaN;
        NiftiWriter.WriteFile(volume, Path.Combine(_dataset.Path, "imagesTr", "case_a_0000.nii.gz"));
        var result = DatasetVerifier.Verify(_dataset.Path, 1, CancellationToken.None);
        Assert.Contains("imagesTr/case_a_0000.nii.gz contains NaN", result.Problems);
    }

    private void WriteImage(string name, VolumeGeometry grid)
    {
        var volume = Volume.Allocate(grid, VoxelType.Int16);
        volume.AsInt16().Fill(-1000);
        NiftiWriter.WriteFile(volume, Path.Combine(_dataset.Path, "imagesTr", name + "_0000.nii.gz"));
    }

    private void WriteLabel(string name, VolumeGeometry grid, byte highest)
    {
        var label = Volume.Allocate(grid, VoxelType.UInt8);
        label.AsUInt8()[0] = 1;
        label.AsUInt8()[1] = highest;
        NiftiWriter.WriteFile(label, Path.Combine(_dataset.Path, "labelsTr", name + ".nii.gz"));
    }
}
