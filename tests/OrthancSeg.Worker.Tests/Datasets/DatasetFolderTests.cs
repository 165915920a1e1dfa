using OrthancSeg.Worker.Datasets;

namespace OrthancSeg.Worker.Tests.Datasets;

public sealed class DatasetFolderTests : IDisposable
{
    private readonly TempDirectory _root = new();

    public void Dispose() => _root.Dispose();

    [Fact]
    public void Dataset_folder_is_named_with_a_three_digit_id()
    {
        var folder = new DatasetFolder(_root.Path, 7, "LiverCT");
        Assert.Equal("Dataset007_LiverCT", folder.Name);
        Assert.Equal(Path.Combine(_root.Path, "Dataset007_LiverCT"), folder.FinalPath);
        Assert.Equal(Path.Combine(_root.Path, ".Dataset007_LiverCT.building-12.3"), folder.BuildingPath(12, 3));
    }

    [Fact]
    public void First_swap_moves_the_building_folder_into_place()
    {
        var folder = new DatasetFolder(_root.Path, 1, "A");
        var building = folder.CreateBuilding(1, 1);
        File.WriteAllText(Path.Combine(building, "dataset.json"), "new");

        Assert.False(folder.SwapIn(building));

        Assert.Equal("new", File.ReadAllText(Path.Combine(folder.FinalPath, "dataset.json")));
        Assert.True(Directory.Exists(Path.Combine(folder.FinalPath, "imagesTr")));
        Assert.False(Directory.Exists(building));
    }

    [Fact]
    public void Swap_replaces_the_previous_dataset_whole_and_removes_it()
    {
        var folder = new DatasetFolder(_root.Path, 1, "A");
        var first = folder.CreateBuilding(1, 1);
        File.WriteAllText(Path.Combine(first, "imagesTr", "old_0000.nii.gz"), "old");
        folder.SwapIn(first);
        var building = folder.CreateBuilding(2, 1);
        File.WriteAllText(Path.Combine(building, "imagesTr", "new_0000.nii.gz"), "new");

        Assert.True(folder.SwapIn(building));

        Assert.Equal(["new_0000.nii.gz"], Directory.GetFiles(Path.Combine(folder.FinalPath, "imagesTr")).Select(Path.GetFileName));
        Assert.Equal([folder.FinalPath], Directory.GetDirectories(_root.Path));
    }

    [Fact]
    public void Leftovers_of_this_dataset_are_removed_and_other_folders_are_left_alone()
    {
        var folder = new DatasetFolder(_root.Path, 1, "A");
        folder.CreateBuilding(3, 1);
        folder.CreateBuilding(4, 2);
        var other = new DatasetFolder(_root.Path, 2, "B").CreateBuilding(5, 1);
        Directory.CreateDirectory(folder.FinalPath);

        var removed = folder.RemoveLeftovers();

        Assert.Equal([".Dataset001_A.building-3.1", ".Dataset001_A.building-4.2"], removed.Order(StringComparer.Ordinal));
        Assert.True(Directory.Exists(other));
        Assert.True(Directory.Exists(folder.FinalPath));
    }

    [Fact]
    public void Scratch_of_one_snapshot_is_removed_with_every_attempt_and_nothing_else()
    {
        var folder = new DatasetFolder(_root.Path, 1, "A");
        folder.CreateBuilding(7, 1);
        folder.CreateBuilding(7, 2);
        var otherSnapshot = folder.CreateBuilding(70, 1);

        DatasetFolder.At(folder.FinalPath).RemoveScratch(7);

        Assert.Equal([otherSnapshot], Directory.GetDirectories(_root.Path));
    }

    [Fact]
    public void Reused_file_is_a_hard_link_so_removing_the_old_dataset_keeps_it()
    {
        var source = _root.Write("source.nii.gz", "voxels");
        var target = Path.Combine(_root.Path, "target.nii.gz");

        DatasetFolder.LinkOrCopy(source, target);
        File.Delete(source);

        Assert.Equal("voxels", File.ReadAllText(target));
    }
}
