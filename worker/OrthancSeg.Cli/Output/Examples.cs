using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.Runtime.CompilerServices;

namespace OrthancSeg.Cli.Output;

/// <summary>
/// Examples for a command's --help: `new Command(...).WithExamples("orthancseg cases list --status labeled")`. Each is a whole
/// command line a person can paste; a test parses every one against the command tree, so an example that stops working fails it.
/// </summary>
internal static class Examples
{
    private static readonly ConditionalWeakTable<Command, string[]> ByCommand = [];

    public static T WithExamples<T>(this T command, params string[] examples) where T : Command
    {
        ByCommand.AddOrUpdate(command, examples);
        return command;
    }

    public static IReadOnlyList<string> Of(Command command) => ByCommand.TryGetValue(command, out var examples) ? examples : [];

    /// <summary>Makes --help print the examples after the usual sections (System.CommandLine's own help, then "Examples:").</summary>
    public static void AddToHelp(RootCommand root)
    {
        var help = root.Options.OfType<HelpOption>().Single();
        help.Action = new ExamplesHelpAction((HelpAction)help.Action!);
    }

    private sealed class ExamplesHelpAction(HelpAction standard) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            var result = standard.Invoke(parseResult);
            var examples = Of(parseResult.CommandResult.Command);
            if (examples.Count > 0)
            {
                var output = parseResult.InvocationConfiguration.Output;
                output.WriteLine("Examples:");
                foreach (var example in examples)
                {
                    output.WriteLine($"  {example}");
                }
                output.WriteLine();
            }
            return result;
        }
    }
}
