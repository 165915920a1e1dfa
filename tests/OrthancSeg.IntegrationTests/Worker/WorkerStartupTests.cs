using System.Diagnostics;
using Grpc.Health.V1;
using Npgsql;
using OrthancSeg.IntegrationTests.Fixtures;

namespace OrthancSeg.IntegrationTests.Worker;

/// <summary>Workers started for one test each: bad configuration, a database that goes away.</summary>
[Collection(PostgresCollection.Name)]
public sealed class WorkerStartupTests(PostgresServer server)
{
    [Fact]
    public async Task Invalid_configuration_stops_the_worker_with_exit_code_2_and_names_every_bad_key()
    {
        var directory = Directory.CreateTempSubdirectory("orthancseg-badconfig-").FullName;
        try
        {
            var emptyToken = Path.Combine(directory, "admin-token");
            await WorkerProcess.WriteSecretAsync(emptyToken, "");
            var info = new ProcessStartInfo("dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                WorkingDirectory = directory,
            };
            info.ArgumentList.Add(BuildOutput.WorkerAssembly);
            info.Environment["OrthancSeg__Auth__AdminTokenFile"] = emptyToken;
            info.Environment["OrthancSeg__Auth__BridgeTokenFile"] = Path.Combine(directory, "missing");
            info.Environment["Kestrel__Endpoints__Grpc__Url"] = $"http://127.0.0.1:{ProcessRunner.FreePort()}";

            using var process = Process.Start(info)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await process.WaitForExitAsync(timeout.Token);
            var output = await stdout + await stderr;

            Assert.Equal(2, process.ExitCode);
            Assert.Contains("OrthancSeg:Database:ConnectionString is not set", output, StringComparison.Ordinal);
            Assert.Contains($"OrthancSeg:Auth:AdminTokenFile: file '{emptyToken}' is empty", output, StringComparison.Ordinal);
            Assert.Contains("OrthancSeg:Auth:BridgeTokenFile: file", output, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task Health_stops_serving_when_the_database_goes_away_and_the_cli_says_so()
    {
        await using var worker = await WorkerProcess.StartAsync(server, new Dictionary<string, string>());
        var database = new NpgsqlConnectionStringBuilder(worker.ConnectionString).Database!;

        await using (var admin = new NpgsqlConnection(server.AdminConnectionString))
        {
            await admin.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP DATABASE \"{database}\" WITH (FORCE)", admin);
            await drop.ExecuteNonQueryAsync();
        }

        using var channel = worker.CreateChannel();
        var health = new Health.HealthClient(channel);
        await ProcessRunner.WaitUntilAsync(async () => (await health.CheckAsync(new HealthCheckRequest())).Status == HealthCheckResponse.Types.ServingStatus.NotServing,
            TimeSpan.FromSeconds(30), "health to report NOT_SERVING");
        var cli = await CliProcess.RunAsync(["health", "--url", worker.Address]);
        Assert.Equal(1, cli.ExitCode);
        Assert.Contains("NOT_SERVING", cli.Stdout, StringComparison.Ordinal);
    }
}
