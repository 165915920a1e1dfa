using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using OrthancSeg.Worker.Workflows;

namespace OrthancSeg.Worker.Events;

/// <summary>InvalidArgument with google.rpc.BadRequest field violations, so clients can show which field is wrong.</summary>
internal static class FieldErrors
{
    public static RpcException InvalidArgument(IReadOnlyList<FieldProblem> problems)
    {
        var badRequest = new BadRequest();
        badRequest.FieldViolations.AddRange(problems.Select(p => new BadRequest.Types.FieldViolation { Field = p.Field, Description = p.Description }));
        return new Google.Rpc.Status
        {
            Code = (int)Code.InvalidArgument,
            Message = string.Join("; ", problems.Select(p => $"{p.Field}: {p.Description}")),
            Details = { Any.Pack(badRequest) },
        }.ToRpcException();
    }

    public static RpcException AlreadyExists(string message) => new(new global::Grpc.Core.Status(StatusCode.AlreadyExists, message));
}
