namespace OrthancSeg.Dicom.Tests.Tools;

/// <summary>Files committed under tests/OrthancSeg.Dicom.Tests/Fixtures, found from the test binary's location.</summary>
internal static class Fixtures
{
    private static readonly Lazy<string> Root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = System.IO.Path.Combine(dir.FullName, "Fixtures");
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "OrthancSeg.Dicom.Tests.csproj")) && Directory.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new DirectoryNotFoundException($"No Fixtures directory above {AppContext.BaseDirectory}");
    });

    public static string Path(params string[] parts) => System.IO.Path.Combine([Root.Value, .. parts]);
}
