using System.Net;
using System.Text.Json;
using Npgsql;
using OrthancSeg.IntegrationTests.Fixtures;

namespace OrthancSeg.IntegrationTests.Stack;

[Collection(OrthancCollection.Name)]
public sealed class OrthancIndexTests(OrthancServer orthanc)
{
    [Fact]
    public async Task Uploaded_instance_is_indexed_in_PostgreSQL_under_its_series()
    {
        using var series = await CtSeries.CreateAsync(slices: 2);
        var instanceIds = await orthanc.UploadAsync(series.Files);

        using var client = orthanc.CreateClient();
        using var instance = JsonDocument.Parse(await client.GetStringAsync(new Uri($"instances/{instanceIds[0]}", UriKind.Relative)));
        var seriesId = instance.RootElement.GetProperty("ParentSeries").GetString();

        // Read Orthanc's own index tables: the series Orthanc reports must be a row there, found by its UID.
        await using var connection = new NpgsqlConnection(orthanc.IndexConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            """
            SELECT r.publicid
              FROM resources r
              JOIN dicomidentifiers d ON d.id = r.internalid
             WHERE r.resourcetype = 2 AND d.taggroup = 32 AND d.tagelement = 14 AND d.value = @uid
            """, connection);
        command.Parameters.AddWithValue("uid", series.SeriesInstanceUid);
        var publicIds = new List<string>();
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                publicIds.Add(reader.GetString(0));
            }
        }
        Assert.Equal([seriesId!], publicIds);

        await using var count = new NpgsqlCommand("SELECT count(*) FROM resources r JOIN resources s ON r.parentid = s.internalid WHERE s.publicid = @id AND r.resourcetype = 3", connection);
        count.Parameters.AddWithValue("id", seriesId!);
        Assert.Equal(2L, (long)(await count.ExecuteScalarAsync())!);
    }

    [Fact]
    public async Task Orthanc_refuses_requests_without_credentials()
    {
        using var anonymous = new HttpClient { BaseAddress = orthanc.BaseUrl };
        using var response = await anonymous.GetAsync(new Uri("system", UriKind.Relative));
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task Orthanc_loads_the_plugins_the_stack_relies_on()
    {
        using var client = orthanc.CreateClient();
        using var system = JsonDocument.Parse(await client.GetStringAsync(new Uri("system", UriKind.Relative)));
        Assert.True(system.RootElement.GetProperty("DatabaseBackendPlugin").ValueKind == JsonValueKind.String,
            "Orthanc runs on its built-in SQLite index instead of the PostgreSQL plugin");
        var plugins = JsonSerializer.Deserialize<string[]>(await client.GetStringAsync(new Uri("plugins", UriKind.Relative)))!;
        Assert.Contains("dicom-web", plugins);
        Assert.Contains("postgresql-index", plugins);
        Assert.Contains("python", plugins);
        Assert.Contains("gdcm", plugins);
    }
}
