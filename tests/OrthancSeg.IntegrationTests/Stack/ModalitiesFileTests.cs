using OrthancSeg.IntegrationTests.Fixtures;

namespace OrthancSeg.IntegrationTests.Stack;

/// <summary>
/// The operator's .stack/modalities.json as render-orthanc-config.sh (run by `make up`) reads it: a mistake stops the
/// start with the modality named, rather than an Orthanc that refuses the scanner for a reason found only in its log.
/// </summary>
public sealed class ModalitiesFileTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("orthancseg-modalities-").FullName;

    [Theory]
    [InlineData("""{ "CT_ROOM_1": ["AN_AE_TITLE_TOO_LONG", "10.0.0.5", 104] }""", "modality 'CT_ROOM_1'", "AE title")]
    [InlineData("""{ "CT_ROOM_1": ["CT1", "10.0.0.5"] }""", "modality 'CT_ROOM_1'", "must be")]
    [InlineData("""{ "CT_ROOM_1": ["CT1", "10.0.0.5", 104], }""", "not valid JSON", "modalities.json")]
    public async Task A_mistake_in_the_modalities_file_stops_the_rendering_and_names_it(string modalities, string named, string reason)
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => RenderAsync(modalities));

        Assert.Contains(named, error.Message, StringComparison.Ordinal);
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Commented_declarations_render_into_DicomModalities()
    {
        var config = await RenderAsync("""
            // Scanners allowed to store.
            //   "OLD_CT": ["OLDCT", "10.0.0.4", 104]
            { "CT_ROOM_1": ["CT1", "10.0.0.5", 104] }
            """);

        using var json = System.Text.Json.JsonDocument.Parse(config);
        var declared = json.RootElement.GetProperty("DicomModalities");
        Assert.Equal("CT1", Assert.Single(declared.EnumerateObject()).Value[0].GetString());
        Assert.False(json.RootElement.GetProperty("DicomAlwaysAllowStore").GetBoolean());
    }

    private async Task<string> RenderAsync(string modalities)
    {
        var file = Path.Combine(_directory, "modalities.json");
        var password = Path.Combine(_directory, "password");
        var output = Path.Combine(_directory, "orthanc.json");
        await File.WriteAllTextAsync(file, modalities);
        await File.WriteAllTextAsync(password, "not-a-real-password");
        await ProcessRunner.RunAsync(Path.Combine(RepositoryPaths.OrthancConfig, "render-orthanc-config.sh"),
        [
            output, "HTTP_PORT=8042", "DICOM_PORT=4242", "DICOM_AET=ORTHANCSEG", $"STORAGE_DIR={_directory}", "HTTP_USER=orthancseg",
            $"HTTP_PASSWORD_FILE={password}", "STABLE_AGE=10", "PYTHON_SCRIPT=", "PG_URI=postgresql://role@127.0.0.1:5432/db",
            "WORKER_PORT=50051", "BRIDGE_TOKEN_FILE=/nonexistent", $"MODALITIES_FILE={file}",
        ], TimeSpan.FromSeconds(30));
        return await File.ReadAllTextAsync(output);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
