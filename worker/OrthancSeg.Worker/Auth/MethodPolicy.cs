using System.Collections.Frozen;
using System.Reflection;
using Google.Protobuf.Reflection;
using OrthancSeg.Contracts.V1;
using ServiceDescriptor = Google.Protobuf.Reflection.ServiceDescriptor;

namespace OrthancSeg.Worker.Auth;

/// <summary>What one method requires (its minimum role) and whether it changes anything (what the audit log records).</summary>
internal sealed record MethodRule(string Method, Role MinimumRole, bool ReadOnly);

/// <summary>
/// The rule of every method of every orthancseg.v1 service, read from the generated descriptors: each RPC declares
/// <c>option (orthancseg.v1.minimum_role)</c> beside its contract (protos/orthancseg/v1/options.proto), and a method that
/// changes nothing declares <c>idempotency_level = NO_SIDE_EFFECTS</c>. Nothing here names a method, so a new service is
/// covered the moment its .proto declares its roles, and a service that declares none stops the worker at start-up
/// instead of being open (or silently closed).
/// </summary>
internal sealed class MethodPolicy
{
    private readonly FrozenDictionary<string, MethodRule> _rules;

    private MethodPolicy(IEnumerable<MethodRule> rules) => _rules = rules.ToFrozenDictionary(r => r.Method, StringComparer.Ordinal);

    /// <summary>The rules of the services in the contract assembly (the worker's generated code).</summary>
    public static MethodPolicy FromContracts() => FromServices(ContractServices());

    public static MethodPolicy FromServices(IEnumerable<ServiceDescriptor> services)
    {
        var rules = new List<MethodRule>();
        var undeclared = new List<string>();
        foreach (var method in services.SelectMany(s => s.Methods))
        {
            var options = method.GetOptions();
            var role = options?.GetExtension(OptionsExtensions.MinimumRole) ?? Role.Unspecified;
            if (role == Role.Unspecified)
            {
                undeclared.Add(method.FullName);
                continue;
            }
            var readOnly = options!.IdempotencyLevel == MethodOptions.Types.IdempotencyLevel.NoSideEffects;
            rules.Add(new MethodRule(PathOf(method), role, readOnly));
        }
        if (undeclared.Count > 0)
        {
            throw new InvalidOperationException(
                $"These RPCs declare no role, so nobody could be allowed to call them: {string.Join(", ", undeclared)}. "
                + "Add `option (orthancseg.v1.minimum_role) = ROLE_...;` to each (protos/orthancseg/v1/options.proto says which role means what)");
        }
        return new MethodPolicy(rules);
    }

    /// <summary>Every service of orthancseg.v1 that the contract assembly carries, found through the generated file descriptors.</summary>
    public static IReadOnlyList<ServiceDescriptor> ContractServices() =>
        typeof(OptionsReflection).Assembly.GetTypes()
            .Where(t => t.Namespace == typeof(OptionsReflection).Namespace && t.IsAbstract && t.IsSealed && t.Name.EndsWith("Reflection", StringComparison.Ordinal))
            .Select(t => t.GetProperty("Descriptor", BindingFlags.Public | BindingFlags.Static)?.GetValue(null))
            .OfType<FileDescriptor>()
            .Where(f => f.Package == "orthancseg.v1")
            .SelectMany(f => f.Services)
            .OrderBy(s => s.FullName, StringComparer.Ordinal)
            .ToList();

    /// <summary>The rule of a method by its path ("/orthancseg.v1.CaseService/ListCases"); null for methods outside the contract.</summary>
    public MethodRule? Find(string method) => _rules.GetValueOrDefault(method);

    public IEnumerable<MethodRule> Rules => _rules.Values;

    /// <summary>The path gRPC calls a method by, as ServerCallContext.Method gives it.</summary>
    public static string PathOf(MethodDescriptor method) => $"/{method.Service.FullName}/{method.Name}";
}
