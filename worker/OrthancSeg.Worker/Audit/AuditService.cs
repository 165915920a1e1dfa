using Grpc.Core;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Worker.Auth;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Grpc;

namespace OrthancSeg.Worker.Audit;

/// <summary>orthancseg.v1.AuditService: the audit log for admins.</summary>
internal sealed class AuditService(AuditLog log) : Contracts.V1.AuditService.AuditServiceBase
{
    public override async Task<ListAuditEntriesResponse> ListAuditEntries(ListAuditEntriesRequest request, ServerCallContext context)
    {
        var size = Paging.PageSize(request.PageSize, 100, 1000);
        var query = new AuditQuery(
            Blank(request.TokenName),
            request.Role == Role.Unspecified ? null : Roles.Name(request.Role) is var role && role != "unspecified" ? role
                : throw new InvalidArgumentException("role", $"{request.Role} is not a role"),
            Blank(request.Method),
            Blank(request.StatusCode)?.ToUpperInvariant(),
            request.StartTime?.ToDateTimeOffset(),
            request.EndTime?.ToDateTimeOffset(),
            Paging.IdFromToken(request),
            size + 1);
        var page = await log.ListAsync(query, context.CancellationToken);
        var response = new ListAuditEntriesResponse();
        response.Entries.AddRange(page.Take(size));
        if (page.Count > size)
        {
            response.NextPageToken = Paging.Token(request, page[size - 1].Id);
        }
        return response;
    }

    private static string? Blank(string value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
