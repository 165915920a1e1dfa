using System.Reflection;

namespace OrthancSeg.IntegrationTests.Fixtures;

/// <summary>
/// The built worker and CLI of the same configuration as this test assembly (paths baked in at build time,
/// see the csproj), so `dotnet test -c Release` runs the Release binaries.
/// </summary>
internal static class BuildOutput
{
    public static string WorkerAssembly => Find("WorkerAssembly");

    public static string CliAssembly => Find("CliAssembly");

    private static string Find(string key)
    {
        var path = typeof(BuildOutput).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().SingleOrDefault(a => a.Key == key)?.Value
            ?? throw new InvalidOperationException($"The test assembly has no {key} metadata; was it built from OrthancSeg.IntegrationTests.csproj?");
        return File.Exists(path)
            ? path
            : throw new InvalidOperationException($"{path} does not exist; build the solution first (dotnet build OrthancSeg.sln) in the same configuration as the tests");
    }
}
