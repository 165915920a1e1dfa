using System.CommandLine;
using System.Globalization;
using Google.Protobuf.WellKnownTypes;
using OrthancSeg.Cli.Connection;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Cli.Output;

namespace OrthancSeg.Cli.Commands;

/// <summary>`orthancseg audit list [--token NAME] [--role R] [--method M] [--status CODE] [--since T] [--until T]`: who changed what.</summary>
internal static class AuditCommand
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    public static Command Create()
    {
        var command = new Command("audit", "The audit log: every call that changed something (or tried to), with its token's name and role");
        command.Subcommands.Add(ListCommand());
        return command.WithExamples(
            "orthancseg audit list",
            "orthancseg audit list --role operator --since 2026-12-04T10:00Z");
    }

    private static Command ListCommand()
    {
        var token = new Option<string?>("--token") { Description = "Only calls made with the token of this name (admin, bridge, or a name from OrthancSeg:Auth:Tokens)" };
        var role = new Option<string?>("--role") { Description = "Only calls made with tokens of this role: bridge, viewer, operator or admin" };
        role.CompletionSources.Add(Formatting.Words<Role>());
        var method = new Option<string?>("--method") { Description = "Only calls of this method: its last part (CreateWorkflow) or full path" };
        var status = new Option<string?>("--status") { Description = "Only calls that ended with this gRPC status: ok, permission_denied, not_found, …" };
        var since = new Option<DateTimeOffset?>("--since") { Description = "Only calls at or after this time (e.g. 2026-12-04T10:00Z)" };
        var until = new Option<DateTimeOffset?>("--until") { Description = "Only calls before this time" };
        var limit = new Option<int>("--limit") { Description = "At most this many, newest first (0 for all)", DefaultValueFactory = _ => 50 };
        var command = new Command("list", "List audit entries, newest first")
        {
            token, role, method, status, since, until, limit,
        };
        command.SetAction((parseResult, cancellationToken) => CommandRunner.RunAsync(parseResult, async (worker, output, ct) =>
        {
            var request = new ListAuditEntriesRequest
            {
                TokenName = parseResult.GetValue(token) ?? "",
                Method = parseResult.GetValue(method) ?? "",
                StatusCode = parseResult.GetValue(status)?.ToUpperInvariant() ?? "",
                PageSize = 1000,
            };
            if (parseResult.GetValue(role) is { } word)
            {
                request.Role = Formatting.Parse<Role>(word) is { } parsed and not Role.Unspecified ? parsed
                    : throw new CliException($"--role {word} is not a role; use bridge, viewer, operator or admin", ExitCodes.Usage);
            }
            if (parseResult.GetValue(since) is { } from)
            {
                request.StartTime = Timestamp.FromDateTimeOffset(from);
            }
            if (parseResult.GetValue(until) is { } to)
            {
                request.EndTime = Timestamp.FromDateTimeOffset(to);
            }
            var max = parseResult.GetValue(limit);
            if (max > 0)
            {
                request.PageSize = Math.Min(max, 1000);
            }
            var entries = new List<AuditEntry>();
            do
            {
                var page = await worker.Audit.ListAuditEntriesAsync(request, deadline: DateTime.UtcNow + Deadline, cancellationToken: ct);
                entries.AddRange(page.Entries);
                request.PageToken = page.NextPageToken;
            }
            while (request.PageToken.Length > 0 && (max <= 0 || entries.Count < max));
            if (max > 0 && entries.Count > max)
            {
                entries.RemoveRange(max, entries.Count - max);
            }
            if (output.Json)
            {
                output.WriteJson(entries.Select(ToJson));
            }
            else
            {
                output.Table(["ID", "TIME", "TOKEN", "ROLE", "METHOD", "RESOURCE", "STATUS"], entries.Select(e => (IReadOnlyList<string>)[
                    Formatting.Number(e.Id), Formatting.Time(e.Time), e.TokenName, Formatting.Word(e.Role), ShortMethod(e.Method), e.Resource,
                    e.StatusCode.Length == 0 ? "(no end recorded)" : e.StatusCode.ToLower(CultureInfo.InvariantCulture)]));
            }
            return ExitCodes.Ok;
        }, cancellationToken));
        return command.WithExamples(
            "orthancseg audit list",
            "orthancseg audit list --token alice --method CreateWorkflow",
            "orthancseg audit list --status permission_denied --limit 0 --json");
    }

    /// <summary>"/orthancseg.v1.WorkflowService/CreateWorkflow" → "WorkflowService/CreateWorkflow": the package is the same for every entry.</summary>
    private static string ShortMethod(string method) =>
        method.StartsWith("/orthancseg.v1.", StringComparison.Ordinal) ? method["/orthancseg.v1.".Length..] : method;

    private static object ToJson(AuditEntry e) => new
    {
        id = e.Id,
        time = Formatting.TimeValue(e.Time),
        tokenName = e.TokenName,
        role = Formatting.Word(e.Role),
        method = e.Method,
        resource = e.Resource,
        peer = e.Peer,
        statusCode = e.StatusCode,
        statusMessage = e.StatusMessage,
        endTime = Formatting.TimeValue(e.EndTime),
    };
}
