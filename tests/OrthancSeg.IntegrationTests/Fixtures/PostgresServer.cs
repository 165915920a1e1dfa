using Npgsql;

namespace OrthancSeg.IntegrationTests.Fixtures;

/// <summary>
/// A throwaway PostgreSQL cluster from the binaries the stack installs: initdb in a temporary directory,
/// loopback only, a free port, removed on dispose. Tests create their own databases in it.
/// PostgreSQL refuses to run as root, so as root the cluster belongs to the 'postgres' system user.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    private const string Superuser = "orthancseg_test";
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "orthancseg-pg-" + Guid.NewGuid().ToString("N")[..12]);
    private int _databases;

    public int Port { get; } = ProcessRunner.FreePort();

    /// <summary>
    /// A network namespace (<see cref="LinkedHosts"/>) to run the server in: it listens on that namespace's loopback, where
    /// processes started there connect (<see cref="CreateDatabaseAsync"/>); the test connects through its unix socket.
    /// </summary>
    public string? Namespace { get; init; }

    public string AdminConnectionString => $"Host={TestHost};Port={Port};Username={Superuser};Database=postgres;Pooling=false";

    /// <summary>Where the test process connects: loopback, or the server's unix socket folder when it runs in a namespace.</summary>
    private string TestHost => Namespace is null ? "127.0.0.1" : _directory;

    /// <summary>A connection string of <see cref="CreateDatabaseAsync"/> as the test process (outside any namespace) can use it.</summary>
    public string ForTest(string connectionString) => new NpgsqlConnectionStringBuilder(connectionString) { Host = TestHost }.ConnectionString;

    public static string BinDirectory
    {
        get
        {
            var bin = Directory.Exists("/usr/lib/postgresql")
                ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "initdb"))).OrderDescending().FirstOrDefault()
                : null;
            return bin ?? throw new InvalidOperationException("PostgreSQL server binaries are not installed (apt-get install postgresql); run `make test`, which installs them");
        }
    }

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_directory);
        var data = Path.Combine(_directory, "data");
        if (Environment.UserName == "root")
        {
            await ProcessRunner.RunAsync("chown", ["postgres:postgres", _directory], TimeSpan.FromSeconds(10));
        }
        await RunAsPostgres(Path.Combine(BinDirectory, "initdb"), ["-D", data, "-U", Superuser, "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"]);
        await StartServerAsync(data);
    }

    private Task<string> StartServerAsync(string data) =>
        RunAsPostgres(Path.Combine(BinDirectory, "pg_ctl"), ["-D", data, "-l", Path.Combine(_directory, "postgres.log"), "-w", "-t", "60", "start",
            "-o", $"-p {Port} -c listen_addresses=127.0.0.1 -k {_directory} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"]);

    /// <summary>
    /// Restarts the server as an operator's `pg_ctl restart -m fast` does: every session is ended (clients see their connections
    /// break), and the server is back on the same port once this returns.
    /// </summary>
    public async Task RestartAsync(TimeSpan downFor)
    {
        var data = Path.Combine(_directory, "data");
        await RunAsPostgres(Path.Combine(BinDirectory, "pg_ctl"), ["-D", data, "-m", "fast", "-w", "stop"]);
        await Task.Delay(downFor);
        await StartServerAsync(data);
        // The test's own pooled connections died with the old server; the worker under test has to cope on its own.
        NpgsqlConnection.ClearAllPools();
    }

    /// <summary>Creates a new empty database and returns a connection string for it.</summary>
    public async Task<string> CreateDatabaseAsync(string prefix = "test")
    {
        var name = $"{prefix}_{Interlocked.Increment(ref _databases)}";
        await using (var connection = new NpgsqlConnection(AdminConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await command.ExecuteNonQueryAsync();
        }
        return $"Host=127.0.0.1;Port={Port};Username={Superuser};Database={name}";
    }

    public async Task DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        // A server that never started has no data folder: its own error, not pg_ctl's, is what the caller must see.
        if (!Directory.Exists(Path.Combine(_directory, "data")))
        {
            if (Directory.Exists(_directory))
            {
                Directory.Delete(_directory, recursive: true);
            }
            return;
        }
        try
        {
            await RunAsPostgres(Path.Combine(BinDirectory, "pg_ctl"), ["-D", Path.Combine(_directory, "data"), "-m", "immediate", "-w", "stop"]);
        }
        finally
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private Task<string> RunAsPostgres(string program, string[] arguments)
    {
        string[] command = Environment.UserName == "root" ? ["runuser", "-u", "postgres", "--", program, .. arguments] : [program, .. arguments];
        if (Namespace is not null)
        {
            command = ["ip", "netns", "exec", Namespace, .. command];
        }
        return ProcessRunner.RunAsync(command[0], command[1..], TimeSpan.FromSeconds(90), workingDirectory: "/");
    }
}

[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>
{
    public const string Name = "PostgreSQL";
}
