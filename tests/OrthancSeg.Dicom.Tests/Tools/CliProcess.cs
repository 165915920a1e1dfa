using System.Reflection;

namespace OrthancSeg.Dicom.Tests.Tools;

/// <summary>
/// The built `orthancseg` CLI run as a process, as a user runs it: the path of the build of the same configuration
/// as this test assembly is baked in by the csproj, so `dotnet test -c Release` runs the Release CLI.
/// </summary>
internal static class CliProcess
{
    private static readonly Lazy<string> Assembly = new(() =>
    {
        var path = typeof(CliProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().SingleOrDefault(a => a.Key == "CliAssembly")?.Value
            ?? throw new InvalidOperationException("The test assembly has no CliAssembly metadata; was it built from OrthancSeg.Dicom.Tests.csproj?");
        return File.Exists(path)
            ? path
            : throw new InvalidOperationException($"{path} does not exist; build the solution (dotnet build OrthancSeg.sln) in the same configuration as the tests");
    });

    public static ExternalTool.Result Run(params string[] arguments) => ExternalTool.Run("dotnet", [Assembly.Value, .. arguments]);
}
