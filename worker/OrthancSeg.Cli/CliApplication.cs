using System.CommandLine;
using OrthancSeg.Cli.Commands;
using OrthancSeg.Cli.Convert;

namespace OrthancSeg.Cli;

internal static class CliApplication
{
    public static RootCommand CreateRootCommand()
    {
        var root = new RootCommand("OrthancSeg admin CLI: talks to the worker's gRPC admin API.")
        {
            GlobalOptions.Url,
            GlobalOptions.TokenFile,
            GlobalOptions.CaFile,
            GlobalOptions.InsecurePlaintext,
            GlobalOptions.Json,
        };

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

        return root;
    }
}
