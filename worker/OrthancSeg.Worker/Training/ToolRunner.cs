using System.ComponentModel;
using System.Diagnostics;

namespace OrthancSeg.Worker.Training;

/// <summary>What a short-lived tool printed and how it ended.</summary>
internal sealed record ToolResult(int ExitCode, string StandardOutput, string StandardError)
{
    public bool Succeeded => ExitCode == 0;

    /// <summary>Both streams, trimmed, for error messages.</summary>
    public string Output => string.Join('\n', new[] { StandardOutput.Trim(), StandardError.Trim() }.Where(s => s.Length > 0));
}

/// <summary>A tool that did not start (not installed) or did not finish within its timeout.</summary>
internal sealed class ToolRunException(string message, bool timedOut, Exception? inner = null) : Exception(message, inner)
{
    public bool TimedOut { get; } = timedOut;
}

/// <summary>
/// Runs the short query and submit commands the training backends ask of the system (sbatch, squeue, nvidia-smi):
/// arguments as a list (never through a shell), optional standard input, and a hard timeout after which the whole
/// tree is killed, so a hung controller or driver costs seconds, never a stuck job.
/// </summary>
internal static class ToolRunner
{
    public static async Task<ToolResult> RunAsync(string fileName, IEnumerable<string> arguments, TimeSpan timeout,
        IReadOnlyDictionary<string, string>? environment = null, string? standardInput = null, CancellationToken cancellationToken = default)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }
        var commandLine = $"{fileName} {string.Join(' ', info.ArgumentList)}";
        using var process = new Process { StartInfo = info };
        try
        {
            process.Start();
        }
        catch (Win32Exception e)
        {
            throw new ToolRunException($"{fileName} could not be started: {e.Message}", timedOut: false, e);
        }
        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            try
            {
                if (standardInput is not null)
                {
                    await process.StandardInput.WriteAsync(standardInput.AsMemory(), deadline.Token);
                }
                process.StandardInput.Close();
            }
            catch (IOException)
            {
                // The tool exited without reading its input; its exit code and output tell why.
            }
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // Exited meanwhile.
            }
            cancellationToken.ThrowIfCancellationRequested();
            throw new ToolRunException($"{commandLine} did not finish within {timeout.TotalSeconds:0.#} s", timedOut: true);
        }
        return new ToolResult(process.ExitCode, await stdout, await stderr);
    }
}
