using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace OrthancSeg.IntegrationTests.Fixtures;

/// <summary>Runs the stack's own binaries for the fixtures and reports their output when they fail.</summary>
internal static class ProcessRunner
{
    public static async Task<string> RunAsync(string fileName, IEnumerable<string> arguments, TimeSpan timeout,
        IDictionary<string, string>? environment = null, string? workingDirectory = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {fileName}");
        var output = new StringBuilder();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{fileName} {string.Join(' ', info.ArgumentList)} did not finish within {timeout}");
        }
        output.Append(await stdout).Append(await stderr);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{fileName} {string.Join(' ', info.ArgumentList)} exited with {process.ExitCode}:\n{output}");
        }
        return output.ToString();
    }

    // Test servers listen on ports from 20000-29999, below Linux's ephemeral range (32768-60999 by default): a port
    // chosen there can never be taken by an outgoing connection of a parallel test between being chosen and being bound,
    // and none is handed out twice in one run. The start depends on the process id so concurrent runs rarely overlap.
    private const int FirstPort = 20000;
    private const int PortCount = 10000;
    private static int _nextPort = Environment.ProcessId * 97 % PortCount;

    /// <summary>A loopback TCP port that nothing listens on right now and that this run has not handed out before.</summary>
    public static int FreePort()
    {
        for (var tries = 0; tries < PortCount; tries++)
        {
            var port = FirstPort + (Interlocked.Increment(ref _nextPort) % PortCount);
            try
            {
                using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                probe.Bind(new IPEndPoint(IPAddress.Loopback, port));
                return port;
            }
            catch (SocketException)
            {
                // In use; try the next one.
            }
        }
        throw new InvalidOperationException($"no free loopback port in {FirstPort}-{FirstPort + PortCount - 1}");
    }

    /// <summary>Distinct loopback ports that nothing listens on right now.</summary>
    public static int[] FreePorts(int count) => [.. Enumerable.Range(0, count).Select(_ => FreePort())];

    /// <summary>Waits until <paramref name="condition"/> holds or the deadline passes.</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (await condition())
            {
                return;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out after {timeout} waiting for {what}");
            }
            await Task.Delay(50);
        }
    }
}
