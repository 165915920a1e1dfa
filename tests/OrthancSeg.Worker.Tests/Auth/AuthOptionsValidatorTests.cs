using OrthancSeg.Worker.Auth;

namespace OrthancSeg.Worker.Tests.Auth;

public sealed class AuthOptionsValidatorTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public void Two_distinct_long_tokens_are_accepted_even_with_a_trailing_newline()
    {
        var result = Validate(_directory.Write("bridge", new string('b', 64) + "\n"), _directory.Write("admin", new string('a', 64) + "\n"));

        Assert.True(result.Succeeded);
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

    private static Microsoft.Extensions.Options.ValidateOptionsResult Validate(string? bridge, string? admin) =>
        new AuthOptionsValidator().Validate(null, new AuthOptions { BridgeTokenFile = bridge, AdminTokenFile = admin });
}
