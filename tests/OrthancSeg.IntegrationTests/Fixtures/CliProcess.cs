using System.Diagnostics;

namespace OrthancSeg.IntegrationTests.Fixtures;

/// <summary>What a run of the built `orthancseg` CLI printed and how it exited.</summary>
public sealed record CliResult(int ExitCode, string Stdout, string Stderr);

/// <summary>Runs the built CLI as a user would, with only the environment the test gives it.</summary>
public static class CliProcess
{
    public static async Task<CliResult> RunAsync(IEnumerable<string> arguments, IDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(BuildOutput.CliAssembly);
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        // The developer's own ORTHANCSEG_* settings must not leak into the test.
        info.Environment.Remove("ORTHANCSEG_URL");
        info.Environment.Remove("ORTHANCSEG_TOKEN_FILE");
        // A COLUMNS exported by the developer's shell would shorten the tables the tests read.
        info.Environment.Remove("COLUMNS");
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }
        using var process = Process.Start(info) ?? throw new InvalidOperationException("Could not start dotnet");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"orthancseg {string.Join(' ', arguments)} did not finish within 60 s");
        }
        return new CliResult(process.ExitCode, await stdout, await stderr);
    }
}
