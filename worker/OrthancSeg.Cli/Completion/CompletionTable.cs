using System.CommandLine;
using System.CommandLine.Completions;

namespace OrthancSeg.Cli.Completion;

/// <summary>
/// What a shell may offer after each command path, read from the command tree: "w:cases" the words after `orthancseg cases`
/// (its subcommands, or the fixed values of its arguments), "o:cases list" the options there (its own and the recursive ones of
/// its ancestors), and "v:cases list|--status" the values of an option that takes one (empty when any value goes: the shell
/// then completes file names). Every command path has a "w:" entry, which is how a script tells a subcommand from an argument.
/// </summary>
internal static class CompletionTable
{
    public static IReadOnlyList<KeyValuePair<string, string[]>> Build(RootCommand root)
    {
        var table = new List<KeyValuePair<string, string[]>>();
        Add(table, root, "", []);
        return table;
    }

    private static void Add(List<KeyValuePair<string, string[]>> table, Command command, string path, IReadOnlyList<Option> inherited)
    {
        var options = command.Options.Concat(inherited).Where(o => !o.Hidden).ToList();
        var words = command.Subcommands.Where(c => !c.Hidden).SelectMany(Names)
            .Concat(command.Arguments.Where(a => !a.Hidden).SelectMany(a => a.GetCompletions(CompletionContext.Empty).Select(c => c.Label)))
            .Distinct(StringComparer.Ordinal).ToArray();
        table.Add(new($"w:{path}", words));
        table.Add(new($"o:{path}", options.SelectMany(Names).Distinct(StringComparer.Ordinal).ToArray()));
        foreach (var option in options.Where(TakesValue))
        {
            var values = option.GetCompletions(CompletionContext.Empty).Select(c => c.Label).ToArray();
            foreach (var name in Names(option))
            {
                table.Add(new($"v:{path}|{name}", values));
            }
        }
        var recursive = inherited.Concat(command.Options.Where(o => o.Recursive)).ToList();
        foreach (var subcommand in command.Subcommands.Where(c => !c.Hidden))
        {
            foreach (var name in Names(subcommand))
            {
                Add(table, subcommand, path.Length == 0 ? name : $"{path} {name}", recursive);
            }
        }
    }

    /// <summary>A flag (--json) takes no value; everything else takes the next word.</summary>
    private static bool TakesValue(Option option) => option.Arity.MaximumNumberOfValues > 0 && option.ValueType != typeof(bool);

    // "/h" and "-?" are Windows habits that a shell would glob or mistake for a path.
    private static IEnumerable<string> Names(Symbol symbol) =>
        (symbol switch
        {
            Option o => o.Aliases.Prepend(o.Name),
            Command c => c.Aliases.Prepend(c.Name),
            _ => [symbol.Name],
        }).Where(n => !n.StartsWith('/') && n != "-?").Distinct(StringComparer.Ordinal);
}
