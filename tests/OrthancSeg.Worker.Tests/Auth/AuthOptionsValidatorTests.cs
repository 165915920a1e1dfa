using Microsoft.Extensions.Options;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Worker.Auth;

namespace OrthancSeg.Worker.Tests.Auth;

public sealed class AuthOptionsValidatorTests : IDisposable
{
    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public void Two_distinct_long_tokens_are_accepted_even_with_a_trailing_newline()
    {
        var result = Validate(_directory.Write("bridge", new string('b', 64) + "\n"), _directory.Write("admin", new string('a', 64) + "\n"));

        Assert.True(result.Succeeded, string.Join("; ", result.Failures ?? []));
    }

    [Fact]
    public void Unset_files_are_named_by_their_configuration_key()
    {
        var result = Validate(null, null);

        Assert.Contains(result.Failures!, f => f.StartsWith("OrthancSeg:Auth:BridgeTokenFile is not set", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.StartsWith("OrthancSeg:Auth:AdminTokenFile is not set", StringComparison.Ordinal));
    }

    [Fact]
    public void A_missing_file_is_named_with_its_path_and_how_to_create_it()
    {
        var missing = Path.Combine(_directory.Path, "nope");

        var result = Validate(missing, _directory.Write("admin", new string('a', 64)));

        var failure = Assert.Single(result.Failures!);
        Assert.Contains($"OrthancSeg:Auth:BridgeTokenFile: file '{missing}' was not found", failure, StringComparison.Ordinal);
        Assert.Contains("openssl rand -hex 32", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void An_empty_file_is_reported_as_empty()
    {
        var empty = _directory.Write("admin", " \n");

        var result = Validate(_directory.Write("bridge", new string('b', 64)), empty);

        Assert.Equal($"OrthancSeg:Auth:AdminTokenFile: file '{empty}' is empty; write the secret into it", Assert.Single(result.Failures!));
    }

    [Fact]
    public void A_short_token_is_refused_with_its_length_not_its_content()
    {
        var result = Validate(_directory.Write("bridge", "secret123"), _directory.Write("admin", new string('a', 64)));

        var failure = Assert.Single(result.Failures!);
        Assert.Contains("has 9 characters, fewer than 16", failure, StringComparison.Ordinal);
        Assert.DoesNotContain("secret123", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void The_same_token_for_bridge_and_admin_is_refused()
    {
        var token = new string('x', 64);

        var result = Validate(_directory.Write("bridge", token), _directory.Write("admin", token + "\n"));

        Assert.Contains("hold the same token", Assert.Single(result.Failures!), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(Private | UnixFileMode.GroupRead, "its group", "640")]
    [InlineData(Private | UnixFileMode.GroupRead | UnixFileMode.OtherRead, "other users", "644")]
    [InlineData(Private | UnixFileMode.OtherWrite, "other users", "602")]
    public void A_token_file_open_to_group_or_others_is_refused_with_its_mode_and_the_fix(UnixFileMode mode, string who, string octal)
    {
        var open = _directory.Write("admin", new string('a', 64), mode);

        var result = Validate(_directory.Write("bridge", new string('b', 64)), open);

        var failure = Assert.Single(result.Failures!);
        Assert.Contains($"OrthancSeg:Auth:AdminTokenFile: file '{open}' is open to {who} (mode {octal})", failure, StringComparison.Ordinal);
        Assert.Contains($"chmod 600 {open}", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void An_owner_read_only_token_file_is_accepted()
    {
        var result = Validate(_directory.Write("bridge", new string('b', 64), UnixFileMode.UserRead), _directory.Write("admin", new string('a', 64)));

        Assert.True(result.Succeeded, string.Join("; ", result.Failures ?? []));
    }

    [Fact]
    public void Named_tokens_with_roles_are_configured_beside_bridge_and_admin()
    {
        var options = Options(_directory.Write("bridge", new string('b', 64)), _directory.Write("admin", new string('a', 64)));
        options.Tokens["alice"] = new TokenOptions { File = _directory.Write("alice", new string('c', 64)), Role = "operator" };
        options.Tokens["bob.viewer"] = new TokenOptions { File = _directory.Write("bob", new string('d', 64)), Role = "Viewer" };

        Assert.True(new AuthOptionsValidator().Validate(null, options).Succeeded);
        Assert.Equal([("bridge", Role.Bridge), ("admin", Role.Admin), ("alice", Role.Operator), ("bob.viewer", Role.Viewer)],
            AuthOptionsValidator.Configured(options).Select(t => (t.Name, t.Role)));
    }

    [Fact]
    public void A_named_token_without_a_known_role_or_with_a_taken_name_is_refused()
    {
        var options = Options(_directory.Write("bridge", new string('b', 64)), _directory.Write("admin", new string('a', 64)));
        options.Tokens["alice"] = new TokenOptions { File = _directory.Write("alice", new string('c', 64)), Role = "superuser" };
        options.Tokens["bob"] = new TokenOptions { File = _directory.Write("bob", new string('d', 64)) };
        options.Tokens["admin"] = new TokenOptions { File = _directory.Write("other", new string('e', 64)), Role = "admin" };
        options.Tokens["Eve Smith"] = new TokenOptions { File = _directory.Write("eve", new string('f', 64)), Role = "viewer" };

        var failures = new AuthOptionsValidator().Validate(null, options).Failures!.ToList();

        Assert.Contains("OrthancSeg:Auth:Tokens:alice:Role is 'superuser'; set it to one of bridge, viewer, operator, admin", failures);
        Assert.Contains("OrthancSeg:Auth:Tokens:bob:Role is not set; set it to one of bridge, viewer, operator, admin", failures);
        Assert.Contains(failures, f => f.StartsWith("OrthancSeg:Auth:Tokens:admin: the name 'admin' is taken by OrthancSeg:Auth:AdminTokenFile", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("OrthancSeg:Auth:Tokens:Eve Smith: the name 'Eve Smith' is not a token name", StringComparison.Ordinal));
        Assert.Equal(4, failures.Count);
    }

    [Fact]
    public void A_named_token_equal_to_another_is_refused_naming_both_keys()
    {
        var token = new string('z', 64);
        var options = Options(_directory.Write("bridge", new string('b', 64)), _directory.Write("admin", new string('a', 64)));
        options.Tokens["alice"] = new TokenOptions { File = _directory.Write("alice", token), Role = "viewer" };
        options.Tokens["bob"] = new TokenOptions { File = _directory.Write("bob", token), Role = "admin" };

        var failure = Assert.Single(new AuthOptionsValidator().Validate(null, options).Failures!);

        Assert.Contains("OrthancSeg:Auth:Tokens:alice:File and OrthancSeg:Auth:Tokens:bob:File hold the same token", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void The_authenticator_reads_every_configured_token_from_its_file()
    {
        var options = Options(_directory.Write("bridge", new string('b', 64)), _directory.Write("admin", new string('a', 64)));
        options.Tokens["alice"] = new TokenOptions { File = _directory.Write("alice", new string('c', 64) + "\n"), Role = "operator" };

        var authenticator = BearerTokenAuthenticator.FromOptions(options, MethodPolicy.FromContracts());

        Assert.Equal(new Caller("alice", Role.Operator), authenticator.Authorize("/orthancseg.v1.SnapshotService/ExportSnapshot", $"Bearer {new string('c', 64)}").Caller);
    }

    private static AuthOptions Options(string? bridge, string? admin) => new() { BridgeTokenFile = bridge, AdminTokenFile = admin };

    private static ValidateOptionsResult Validate(string? bridge, string? admin) => new AuthOptionsValidator().Validate(null, Options(bridge, admin));
}
