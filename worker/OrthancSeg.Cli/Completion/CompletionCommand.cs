using System.CommandLine;
using OrthancSeg.Cli.Output;

namespace OrthancSeg.Cli.Completion;

/// <summary>`orthancseg completion bash|zsh|fish`: prints the shell's completion script (install lines in docs/admin.md).</summary>
internal static class CompletionCommand
{
    public static Command Create()
    {
        var shell = new Argument<string>("shell") { Description = "bash, zsh or fish" };
        shell.AcceptOnlyFromAmong(CompletionScripts.Shells);
        var command = new Command("completion", "Print a shell completion script for every command, option and option value; load it with: source <(orthancseg completion bash)")
        {
            shell,
        };
        command.SetAction(parseResult =>
        {
            var root = (RootCommand)parseResult.RootCommandResult.Command;
            parseResult.InvocationConfiguration.Output.Write(CompletionScripts.For(parseResult.GetValue(shell)!, root));
            return ExitCodes.Ok;
        });
        return command.WithExamples(
            "orthancseg completion bash",
            "orthancseg completion zsh",
            "orthancseg completion fish");
    }
}
