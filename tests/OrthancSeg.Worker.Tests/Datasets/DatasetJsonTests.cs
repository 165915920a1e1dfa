using System.Text.Json;
using OrthancSeg.Worker.Datasets;
using OrthancSeg.Worker.Labels;
using OrthancSeg.Worker.Workflows;

namespace OrthancSeg.Worker.Tests.Datasets;

public sealed class DatasetJsonTests
{
    private static readonly Workflow Liver = new(1, "liver-ct", 7, "LiverCT", "liverct", [1, 2, 3], new SelectionRule("CT", null, null), true, Workflow.Active,
        [new LabelDefinition(2, "tumor", ["lesion"]), new LabelDefinition(1, "liver", [])], DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch);

    [Fact]
    public void Dataset_json_has_what_nnunet_requires_with_background_zero_and_labels_by_value()
    {
        using var json = JsonDocument.Parse(SnapshotExporter.DatasetJson(Liver, 12, "CT", 6));
        var root = json.RootElement;

        Assert.Equal("CT", root.GetProperty("channel_names").GetProperty("0").GetString());
        Assert.Equal(["background=0", "liver=1", "tumor=2"], root.GetProperty("labels").EnumerateObject().Select(p => $"{p.Name}={p.Value.GetInt32()}"));
        Assert.Equal(6, root.GetProperty("numTraining").GetInt32());
        Assert.Equal(".nii.gz", root.GetProperty("file_ending").GetString());
        Assert.Equal("OrthancSeg snapshot 12 of workflow liver-ct", root.GetProperty("description").GetString());
    }

    [Theory]
    [InlineData("CT", "CT")]
    [InlineData("ct", "CT")]
    [InlineData("MR", "MR")]
    [InlineData("PT", "PT")]
    [InlineData("", "image")]
    public void Channel_name_selects_the_ct_normalisation_only_for_ct(string modality, string expected) =>
        Assert.Equal(expected, SnapshotExporter.ChannelName(modality));
}
