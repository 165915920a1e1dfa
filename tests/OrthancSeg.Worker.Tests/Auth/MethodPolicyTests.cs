using OrthancSeg.Contracts.V1;
using OrthancSeg.Worker.Auth;

namespace OrthancSeg.Worker.Tests.Auth;

/// <summary>The roles are declared in the .proto files; these tests catch a method (of any service, also one added later) without one.</summary>
public sealed class MethodPolicyTests
{
    public static TheoryData<string> Methods()
    {
        var data = new TheoryData<string>();
        foreach (var method in MethodPolicy.ContractServices().SelectMany(s => s.Methods))
        {
            data.Add(MethodPolicy.PathOf(method));
        }
        return data;
    }

    [Fact]
    public void The_contract_has_every_service_of_the_worker()
    {
        var services = MethodPolicy.ContractServices().Select(s => s.FullName).ToList();

        Assert.Contains("orthancseg.v1.Events", services);
        Assert.Contains("orthancseg.v1.CaseService", services);
        Assert.Contains("orthancseg.v1.AuditService", services);
        Assert.Contains("orthancseg.v1.JobService", services);
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void Every_method_declares_its_minimum_role(string method)
    {
        var descriptor = MethodPolicy.ContractServices().SelectMany(s => s.Methods).Single(m => MethodPolicy.PathOf(m) == method);

        var role = descriptor.GetOptions()?.GetExtension(OptionsExtensions.MinimumRole) ?? Role.Unspecified;

        Assert.True(role != Role.Unspecified, $"{method} declares no (orthancseg.v1.minimum_role); add one beside the rpc in its .proto");
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void A_method_open_to_viewers_changes_nothing(string method)
    {
        var rule = MethodPolicy.FromContracts().Find(method)!;

        Assert.True(rule.MinimumRole != Role.Viewer || rule.ReadOnly,
            $"{method} is open to viewers, who only read, but is not declared `option idempotency_level = NO_SIDE_EFFECTS;`");
    }

    [Fact]
    public void Every_method_of_the_contract_has_a_rule_and_nothing_else_does()
    {
        var policy = MethodPolicy.FromContracts();

        Assert.Equal(MethodPolicy.ContractServices().Sum(s => s.Methods.Count), policy.Rules.Count());
        Assert.Null(policy.Find("/grpc.health.v1.Health/Check"));
    }

    [Fact]
    public void Reads_and_changes_are_told_apart_by_the_declared_idempotency_level()
    {
        var policy = MethodPolicy.FromContracts();

        Assert.Equal(new MethodRule("/orthancseg.v1.CaseService/ListCases", Role.Viewer, ReadOnly: true), policy.Find("/orthancseg.v1.CaseService/ListCases"));
        Assert.Equal(new MethodRule("/orthancseg.v1.WorkflowService/CreateWorkflow", Role.Admin, ReadOnly: false), policy.Find("/orthancseg.v1.WorkflowService/CreateWorkflow"));
        Assert.Equal(new MethodRule("/orthancseg.v1.CaseService/ExcludeCase", Role.Operator, ReadOnly: false), policy.Find("/orthancseg.v1.CaseService/ExcludeCase"));
        Assert.Equal(new MethodRule("/orthancseg.v1.AuditService/ListAuditEntries", Role.Admin, ReadOnly: true),
            policy.Find("/orthancseg.v1.AuditService/ListAuditEntries"));
    }

    [Fact]
    public void A_service_whose_methods_declare_no_role_is_refused_with_their_names()
    {
        // google.protobuf has no service; the reflection service's own descriptor is one without our option.
        var undeclared = global::Grpc.Reflection.V1Alpha.ServerReflection.Descriptor;

        var error = Assert.Throws<InvalidOperationException>(() => { MethodPolicy.FromServices([undeclared]); });

        Assert.Contains("grpc.reflection.v1alpha.ServerReflection.ServerReflectionInfo", error.Message, StringComparison.Ordinal);
        Assert.Contains("option (orthancseg.v1.minimum_role)", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(Role.Viewer, Role.Viewer, true)]
    [InlineData(Role.Operator, Role.Viewer, true)]
    [InlineData(Role.Admin, Role.Operator, true)]
    [InlineData(Role.Viewer, Role.Operator, false)]
    [InlineData(Role.Operator, Role.Admin, false)]
    [InlineData(Role.Bridge, Role.Bridge, true)]
    [InlineData(Role.Admin, Role.Bridge, false)]
    [InlineData(Role.Bridge, Role.Viewer, false)]
    public void Roles_are_ordered_viewer_operator_admin_and_the_bridge_stands_apart(Role held, Role required, bool allowed)
    {
        Assert.Equal(allowed, Roles.Allows(held, required));
    }
}
