extern alias Cli;

using System.CommandLine;
using System.Text;
using Cli::OrthancSeg.Cli;
using Cli::OrthancSeg.Cli.Output;
using OrthancSeg.IntegrationTests.Fixtures;

namespace OrthancSeg.IntegrationTests.Cli;

/// <summary>Every command's --help teaches with examples, and every example is a command line the CLI accepts.</summary>
public sealed class HelpExamplesTests
{
    public static TheoryData<string> Commands()
    {
        var data = new TheoryData<string>();
        foreach (var (path, _) in Walk(CliApplication.CreateRootCommand(), "orthancseg"))
        {
            data.Add(path);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void Command_has_one_to_three_examples_that_parse_to_it_or_below_it(string path)
    {
        var root = CliApplication.CreateRootCommand();
        var command = Walk(root, "orthancseg").Single(c => c.Path == path).Command;

        var examples = Examples.Of(command);

        Assert.True(examples.Count is >= 1 and <= 3, $"`{path}` has {examples.Count} examples in its --help; give it one to three with .WithExamples(...)");
        foreach (var example in examples)
        {
            var words = Split(example);
            Assert.Equal("orthancseg", words[0]);
            var parsed = root.Parse(words[1..]);
            Assert.True(parsed.Errors.Count == 0, $"`{example}` does not parse: {string.Join("; ", parsed.Errors.Select(e => e.Message))}");
            // A group's examples show its subcommands; either way, the example runs this command or one below it.
            var ran = parsed.CommandResult;
            while (ran is not null && ran.Command != command)
            {
                ran = ran.Parent as System.CommandLine.Parsing.CommandResult;
            }
            Assert.True(ran is not null, $"`{example}` runs `{parsed.CommandResult.Command.Name}`, which is not `{path}` or below it");
        }
    }

    [Fact]
    public void Help_of_a_subcommand_ends_with_its_examples()
    {
        var output = new StringWriter();
        var parsed = CliApplication.CreateRootCommand().Parse(["cases", "list", "--help"]);

        var exitCode = parsed.Invoke(new InvocationConfiguration { Output = output });

        Assert.Equal(0, exitCode);
        var help = output.ToString();
        Assert.Contains("Usage:", help, StringComparison.Ordinal);
        var examples = help[help.IndexOf("Examples:", StringComparison.Ordinal)..];
        Assert.Contains("  orthancseg cases list --status labeled --limit 20", examples, StringComparison.Ordinal);
    }

    [Fact]
    public void The_admin_guide_shows_every_command()
    {
        var guide = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "docs", "admin.md"));
        var leaves = Walk(CliApplication.CreateRootCommand(), "orthancseg").Where(c => c.Command.Subcommands.Count == 0).Select(c => c.Path);

        // The offline convert commands have their own guide (orthancseg convert --help).
        var missing = leaves.Where(path => !path.StartsWith("orthancseg convert ", StringComparison.Ordinal) && !guide.Contains(path + " ", StringComparison.Ordinal)
            && !guide.Contains(path + "\n", StringComparison.Ordinal) && !guide.Contains(path + "`", StringComparison.Ordinal)).ToList();

        Assert.True(missing.Count == 0, "docs/admin.md shows no example of: " + string.Join(", ", missing));
    }

    private static IEnumerable<(string Path, Command Command)> Walk(Command command, string path)
    {
        yield return (path, command);
        foreach (var subcommand in command.Subcommands)
        {
            foreach (var child in Walk(subcommand, $"{path} {subcommand.Name}"))
            {
                yield return child;
            }
        }
    }

    /// <summary>Splits a command line the way a POSIX shell does for plain words and '…' or "…" quotes (all the examples use).</summary>
    private static string[] Split(string line)
    {
        var words = new List<string>();
        var word = new StringBuilder();
        var inWord = false;
        char? quote = null;
        foreach (var c in line)
        {
            if (quote is { } q)
            {
                if (c == q)
                {
                    quote = null;
                }
                else
                {
                    word.Append(c);
                }
            }
            else if (c is '\'' or '"')
            {
                quote = c;
                inWord = true;
            }
            else if (c == ' ')
            {
                if (inWord)
                {
                    words.Add(word.ToString());
                    word.Clear();
                    inWord = false;
                }
            }
            else
            {
                word.Append(c);
                inWord = true;
            }
        }
        Assert.True(quote is null, $"unclosed quote in `{line}`");
        if (inWord)
        {
            words.Add(word.ToString());
        }
        return [.. words];
    }
}
