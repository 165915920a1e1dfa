using System.CommandLine;
using System.CommandLine.Invocation;
using OrthancSeg.Cli.Commands;
using OrthancSeg.Cli.Completion;
using OrthancSeg.Cli.Convert;
using OrthancSeg.Cli.Output;

namespace OrthancSeg.Cli;

internal static class CliApplication
{
    /// <summary>Runs one command line; a command line that does not parse ends with <see cref="ExitCodes.Usage"/>.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        var parseResult = CreateRootCommand().Parse(args);
        var exitCode = await parseResult.InvokeAsync();
        return parseResult.Action is ParseErrorAction ? ExitCodes.Usage : exitCode;
    }

    public static RootCommand CreateRootCommand()
    {
        var root = new RootCommand("OrthancSeg admin CLI: talks to the worker's gRPC admin API. Exit codes: 0 done, 1 failed or unhealthy, "
            + "2 bad command line, 3 nothing written, 4 not found, 5 wrong state, 6 no valid token, 7 role may not, 8 unreachable (docs/admin.md).")
        {
            GlobalOptions.Url,
            GlobalOptions.TokenFile,
            GlobalOptions.CaFile,
            GlobalOptions.InsecurePlaintext,
            GlobalOptions.Json,
            GlobalOptions.Wide,
        };
        root.WithExamples(
            "orthancseg status",
            "orthancseg cases list --workflow liver-ct --status labeled",
            "orthancseg snapshots export --workflow liver-ct --wait --url http://127.0.0.1:50051 --token-file .stack/secrets/admin-token");

        // Commands that talk to the worker.
        root.Subcommands.Add(StatusCommand.Create());
        root.Subcommands.Add(HealthCommand.Create());
        root.Subcommands.Add(WorkflowsCommand.Create());
        root.Subcommands.Add(CasesCommand.Create());
        root.Subcommands.Add(LabelsCommand.Create());
        root.Subcommands.Add(JobsCommand.Create());
        root.Subcommands.Add(DeadLettersCommand.Create());
        root.Subcommands.Add(SnapshotsCommand.Create());
        root.Subcommands.Add(TrainingCommand.Create());
        root.Subcommands.Add(ModelsCommand.Create());
        root.Subcommands.Add(InferenceCommand.Create());
        root.Subcommands.Add(AuditCommand.Create());

        // Offline commands (no worker needed).
        root.Subcommands.Add(ConvertCommand.Create());
        root.Subcommands.Add(CompletionCommand.Create());

        Examples.AddToHelp(root);
        return root;
    }
}
