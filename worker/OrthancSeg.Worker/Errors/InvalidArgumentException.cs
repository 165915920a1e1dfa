namespace OrthancSeg.Worker.Errors;

/// <summary>A field of a request that is wrong, and why; becomes a google.rpc.BadRequest field violation.</summary>
/// <param name="Field">The field's path in the request, as the contract names it (e.g. "workflow.labels[0].value").</param>
internal sealed record FieldProblem(string Field, string Description);

/// <summary>
/// A request with one or more wrong fields; gRPC answers InvalidArgument with the message and a BadRequest detail listing every
/// field, so a client can show which field is wrong. Validation collects all problems first, then throws once.
/// </summary>
internal sealed class InvalidArgumentException : Exception
{
    public InvalidArgumentException(IReadOnlyList<FieldProblem> problems)
        : base(string.Join("; ", (problems ?? throw new ArgumentNullException(nameof(problems))).Select(p => $"{p.Field}: {p.Description}")))
    {
        if (problems.Count == 0)
        {
            throw new ArgumentException("An invalid argument needs at least one field problem", nameof(problems));
        }
        Problems = problems;
    }

    public InvalidArgumentException(string field, string description)
        : this([new FieldProblem(field, description)])
    {
    }

    public IReadOnlyList<FieldProblem> Problems { get; }
}
