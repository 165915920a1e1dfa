using System.Globalization;
using System.Runtime.InteropServices;

namespace OrthancSeg.Worker.Datasets;

/// <summary>
/// The on-disk side of a snapshot: <c>&lt;root&gt;/DatasetNNN_Name</c> is only ever replaced whole. A snapshot is built in
/// <c>&lt;root&gt;/.DatasetNNN_Name.building-&lt;snapshot&gt;.&lt;attempt&gt;</c> (each attempt its own scratch folder, so a stale attempt
/// that still runs never writes into the current one's) and swapped in with one renameat2(RENAME_EXCHANGE), so at every instant
/// the final path holds the previous complete dataset or the new complete one. What a crash leaves (a building folder, or after
/// the swap the previous dataset under the building name) is removed by the next export.
/// </summary>
internal sealed partial class DatasetFolder
{
    private const uint RenameExchange = 2;
    private const int AtFdCwd = -100;

    public DatasetFolder(string root, int datasetId, string datasetName)
    {
        Root = root;
        Name = string.Create(CultureInfo.InvariantCulture, $"Dataset{datasetId:D3}_{datasetName}");
        FinalPath = Path.Combine(root, Name);
    }

    /// <summary>The folder of an existing snapshot, from its recorded final path.</summary>
    public static DatasetFolder At(string finalPath) => new(finalPath);

    private DatasetFolder(string finalPath)
    {
        FinalPath = Path.TrimEndingDirectorySeparator(finalPath);
        Root = Path.GetDirectoryName(FinalPath) ?? throw new ArgumentException($"{finalPath} has no parent folder", nameof(finalPath));
        Name = Path.GetFileName(FinalPath);
    }

    public string Root { get; }

    /// <summary>DatasetNNN_Name.</summary>
    public string Name { get; }

    public string FinalPath { get; }

    public string BuildingPath(long snapshotId, int attempt) =>
        Path.Combine(Root, string.Create(CultureInfo.InvariantCulture, $".{Name}.building-{snapshotId}.{attempt}"));

    /// <summary>Removes the scratch folders of every attempt of one snapshot (after it was cancelled or gave up).</summary>
    public void RemoveScratch(long snapshotId)
    {
        if (!Directory.Exists(Root))
        {
            return;
        }
        foreach (var scratch in Directory.EnumerateDirectories(Root, string.Create(CultureInfo.InvariantCulture, $".{Name}.building-{snapshotId}.*")))
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    /// <summary>Removes every half-built or swapped-out folder of this dataset that an earlier export left behind.</summary>
    public IReadOnlyList<string> RemoveLeftovers()
    {
        if (!Directory.Exists(Root))
        {
            return [];
        }
        var removed = new List<string>();
        foreach (var leftover in Directory.EnumerateDirectories(Root, $".{Name}.building-*"))
        {
            Directory.Delete(leftover, recursive: true);
            removed.Add(Path.GetFileName(leftover));
        }
        return removed;
    }

    /// <summary>The folders of an nnU-Net raw dataset that the export writes into.</summary>
    private static readonly string[] Subfolders = ["imagesTr", "labelsTr"];

    /// <summary>A fresh, empty building folder with imagesTr/ and labelsTr/ for one attempt.</summary>
    public string CreateBuilding(long snapshotId, int attempt)
    {
        Directory.CreateDirectory(Root);
        var building = BuildingPath(snapshotId, attempt);
        if (Directory.Exists(building))
        {
            Directory.Delete(building, recursive: true);
        }
        foreach (var folder in Subfolders)
        {
            Directory.CreateDirectory(Path.Combine(building, folder));
        }
        return building;
    }

    /// <summary>
    /// Puts the complete building folder in place of the dataset in one atomic step, then removes what it replaced.
    /// Returns true when a previous dataset was replaced. Callers fence it (<see cref="SnapshotStore.SucceedAsync"/>): only the attempt
    /// holding the job's lease swaps.
    /// </summary>
    public bool SwapIn(string building)
    {
        // The files themselves were flushed to disk as they were written; these make their names durable too.
        foreach (var folder in Subfolders)
        {
            FlushDirectory(Path.Combine(building, folder));
        }
        FlushDirectory(building);
        bool replaced;
        if (Directory.Exists(FinalPath))
        {
            // Exchange, not delete-then-rename: there is no instant without a complete dataset at the final path.
            if (RenameAt2(AtFdCwd, building, AtFdCwd, FinalPath, RenameExchange) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                throw new IOException($"Could not swap {building} into {FinalPath}: renameat2 failed with errno {errno} ({Marshal.GetPInvokeErrorMessage(errno)})");
            }
            replaced = true;
        }
        else
        {
            Directory.Move(building, FinalPath);
            replaced = false;
        }
        FlushDirectory(Root);
        if (replaced)
        {
            // The building path now holds the previous dataset; a crash before this line leaves it for RemoveLeftovers.
            Directory.Delete(building, recursive: true);
        }
        return replaced;
    }

    /// <summary>Hard-links <paramref name="source"/> to <paramref name="target"/>, copying when the file system cannot link.</summary>
    public static void LinkOrCopy(string source, string target)
    {
        if (Link(source, target) == 0)
        {
            return;
        }
        File.Copy(source, target, overwrite: false);
    }

    /// <summary>fsync of a directory, so the renames in it survive a power loss, not only a process kill.</summary>
    private static void FlushDirectory(string path)
    {
        var fd = Open(path, 0 /* O_RDONLY */);
        if (fd < 0)
        {
            return;
        }
        _ = Fsync(fd);
        _ = Close(fd);
    }

    [LibraryImport("libc", EntryPoint = "renameat2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RenameAt2(int oldDirFd, string oldPath, int newDirFd, string newPath, uint flags);

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Link(string oldPath, string newPath);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
