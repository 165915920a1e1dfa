using OrthancSeg.Tests.Support;
using OrthancSeg.Worker.Datasets;

namespace OrthancSeg.Worker.Tests.Datasets;

public sealed class DiskSpaceTests
{
    [Fact]
    public void A_full_filesystem_is_recognised_from_the_write_that_fails_and_named_in_the_message()
    {
        using var disk = Tmpfs.Mount(megabytes: 2);
        var before = DiskSpace.Free(disk.Path);

        var error = Assert.Throws<IOException>(() =>
        {
            using var file = new FileStream(Path.Combine(disk.Path, "fill"), FileMode.CreateNew);
            var chunk = new byte[1 << 16];
            for (var i = 0; i < 1000; i++)
            {
                file.Write(chunk);
                file.Flush(flushToDisk: true);
            }
        });

        Assert.InRange(before, 1_500_000, 2L << 20);
        Assert.True(DiskSpace.IsDiskFull(error), $"{error.HResult}: {error.Message}");
        Assert.False(DiskSpace.IsDiskFull(new FileNotFoundException("gone")));
        Assert.StartsWith($"not enough disk space in {disk.Path}: the disk filled up during the export, 0 MB free", DiskSpace.FilledUp(disk.Path, error), StringComparison.Ordinal);
    }

    [Fact]
    public void The_refusal_says_where_how_much_is_needed_and_how_much_is_free()
    {
        Assert.Equal(120_000_000, DiskSpace.Needed(100_000_000));
        Assert.Equal("not enough disk space in /data/raw: need ~121 MB, 49 MB free", DiskSpace.NotEnough("/data/raw", (120L << 20) + 1, (50L << 20) - 1));
    }
}
