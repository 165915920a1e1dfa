using System.Diagnostics;
using OrthancSeg.IntegrationTests.Fixtures;

namespace OrthancSeg.IntegrationTests.Cli;

/// <summary>`orthancseg completion bash` prints a script that bash loads and that completes commands, subcommands, options and values.</summary>
public sealed class CompletionTests : IAsyncLifetime
{
    private readonly string _script = Path.Combine(Path.GetTempPath(), $"orthancseg-completion-{Guid.NewGuid():N}.bash");

    public async Task InitializeAsync()
    {
        var printed = await CliProcess.RunAsync(["completion", "bash"]);
        Assert.True(printed.ExitCode == 0, printed.Stderr);
        await File.WriteAllTextAsync(_script, printed.Stdout);
    }

    public Task DisposeAsync()
    {
        File.Delete(_script);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task A_command_is_completed_from_its_first_letters()
    {
        Assert.Equal(["cases"], await CompleteAsync("orthancseg", "ca"));
        Assert.Equal(["dead-letters"], await CompleteAsync("orthancseg", "--json", "de"));
    }

    [Fact]
    public async Task After_a_command_its_subcommands_are_offered()
    {
        Assert.Equal(["list", "show", "exclude", "include"], await CompleteAsync("orthancseg", "cases", ""));
        Assert.Equal(["start", "list", "show", "logs", "watch", "cancel"], await CompleteAsync("orthancseg", "training", ""));
    }

    [Fact]
    public async Task After_a_dash_the_options_of_the_subcommand_and_the_global_ones_are_offered()
    {
        var options = await CompleteAsync("orthancseg", "cases", "list", "--");

        Assert.Equal(["--workflow", "--status", "--excluded", "--limit"], options.Take(4));
        Assert.Contains("--json", options);
        Assert.Contains("--token-file", options);
        Assert.DoesNotContain("--wait", options);
    }

    [Fact]
    public async Task An_option_with_fixed_values_offers_them_and_its_value_does_not_count_as_a_command()
    {
        Assert.Equal(["labeled", "unlabeled", "unusable"], await CompleteAsync("orthancseg", "cases", "list", "--status", ""));
        Assert.Equal(["failed"], await CompleteAsync("orthancseg", "--url", "http://127.0.0.1:50051", "jobs", "list", "--state", "f"));
        Assert.Equal(["--workflow"], await CompleteAsync("orthancseg", "snapshots", "export", "--workflow", "cases", "--wo"));
        Assert.Equal(["bash", "fish", "zsh"], await CompleteAsync("orthancseg", "completion", ""));
    }

    /// <summary>Loads the script in a fresh bash, sets COMP_WORDS/COMP_CWORD as bash does on Tab, and returns COMPREPLY.</summary>
    private async Task<string[]> CompleteAsync(params string[] words)
    {
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add("""source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _orthancseg; printf '%s\n' "${COMPREPLY[@]}" """);
        info.ArgumentList.Add("bash");
        info.ArgumentList.Add(_script);
        foreach (var word in words)
        {
            info.ArgumentList.Add(word);
        }
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0 && (await stderr).Length == 0, $"bash exited {process.ExitCode}: {await stderr}");
        return (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }
}
