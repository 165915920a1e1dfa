using OrthancSeg.Worker.Persistence;

namespace OrthancSeg.Worker.Tests.Persistence;

public sealed class DatabaseOptionsValidatorTests
{
    [Fact]
    public void A_missing_connection_string_is_named_with_an_example()
    {
        var failure = Assert.Single(Validate(null).Failures!);

        Assert.StartsWith("OrthancSeg:Database:ConnectionString is not set", failure, StringComparison.Ordinal);
        Assert.Contains("Host=127.0.0.1", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unparseable_connection_string_is_reported_as_such()
    {
        var failure = Assert.Single(Validate("Hots=localhost;Database=x").Failures!);

        Assert.Contains("is not a valid Npgsql connection string", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void A_connection_string_without_a_host_is_refused()
    {
        Assert.Contains("names no Host", Assert.Single(Validate("Database=orthancseg;Username=x").Failures!), StringComparison.Ordinal);
    }

    [Fact]
    public void A_complete_connection_string_is_accepted()
    {
        Assert.True(Validate("Host=127.0.0.1;Port=5432;Database=orthancseg;Username=orthancseg").Succeeded);
    }

    private static Microsoft.Extensions.Options.ValidateOptionsResult Validate(string? connectionString) =>
        new DatabaseOptionsValidator().Validate(null, new DatabaseOptions { ConnectionString = connectionString });
}
