extern alias Cli;

using System.CommandLine;
using Cli::OrthancSeg.Cli;
using Cli::OrthancSeg.Cli.Output;

namespace OrthancSeg.IntegrationTests.Cli;

/// <summary>The progress of a long watch when stderr is no terminal (a script, a log): a plain line per change; nothing with --json.</summary>
public sealed class ProgressTests
{
    [Fact]
    public void Without_a_terminal_each_change_is_one_plain_line_on_stderr_and_stdout_stays_clean()
    {
        var (stdout, stderr) = Watch();

        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.StartsWith("snapshot 3    0%  0/6 cases  queued  ", lines[0], StringComparison.Ordinal);
        Assert.StartsWith("snapshot 3   50%  3/6 cases  running  ", lines[1], StringComparison.Ordinal);
        Assert.StartsWith("snapshot 3  100%  6/6 cases  succeeded  ", lines[2], StringComparison.Ordinal);
        Assert.DoesNotContain('\r', stderr);
        Assert.DoesNotContain('\u001b', stderr);
        Assert.Equal("report\n", stdout);
    }

    [Fact]
    public void With_json_there_is_no_progress_at_all()
    {
        var (stdout, stderr) = Watch("--json");

        Assert.Equal("", stderr);
        Assert.Equal("report\n", stdout);
    }

    private static (string Stdout, string Stderr) Watch(params string[] arguments)
    {
        var root = new RootCommand { GlobalOptions.Json, GlobalOptions.Wide };
        root.SetAction(parseResult =>
        {
            var output = new ConsoleOutput(parseResult);
            output.Progress("snapshot 3", 0, 6, "cases", "queued");
            output.Progress("snapshot 3", 0, 6, "cases", "queued");
            output.Progress("snapshot 3", 3, 6, "cases", "running");
            output.Progress("snapshot 3", 3, 6, "cases", "running");
            output.Progress("snapshot 3", 6, 6, "cases", "succeeded");
            output.EndProgress();
            output.Line("report");
            return 0;
        });
        var stdout = new StringWriter { NewLine = "\n" };
        var stderr = new StringWriter { NewLine = "\n" };
        Assert.Equal(0, root.Parse(arguments).Invoke(new InvocationConfiguration { Output = stdout, Error = stderr }));
        return (stdout.ToString(), stderr.ToString());
    }
}
