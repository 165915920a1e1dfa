using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Labels;
using OrthancSeg.Worker.Workflows;

namespace OrthancSeg.Worker.Tests.Workflows;

public sealed class WorkflowValidationTests
{
    private static WorkflowSpec Spec(string name = "liver-ct", int datasetId = 501, string? datasetName = null, string? pattern = "(?i)liver",
        params LabelDefinition[] labels) =>
        new(name, datasetId, datasetName, labels.Length == 0 ? [new(1, "liver", []), new(2, "tumor", ["lesion"])] : labels, "CT", pattern, null, true);

    [Fact]
    public void A_sound_workflow_passes()
    {
        WorkflowStore.Validate(Spec());
    }

    [Fact]
    public void Every_wrong_field_is_named_at_once()
    {
        var error = Assert.Throws<InvalidArgumentException>(() => WorkflowStore.Validate(
            Spec(name: "Liver CT", datasetId: 0, datasetName: "Liver-CT", pattern: "(liver", labels: [new(256, "liver", []), new(2, " ", [])])));
        Assert.Equal(
            ["workflow.name", "workflow.dataset_id", "workflow.dataset_name", "workflow.labels[0].value", "workflow.labels[1].name", "workflow.selection.series_description_pattern"],
            error.Problems.Select(p => p.Field));
    }

    [Fact]
    public void Names_and_synonyms_must_be_unique_case_insensitively()
    {
        var error = Assert.Throws<InvalidArgumentException>(() => WorkflowStore.Validate(Spec(labels: [new(1, "liver", ["Tumor"]), new(2, "tumor", [])])));
        var problem = Assert.Single(error.Problems);
        Assert.Equal("workflow.labels[1]", problem.Field);
        Assert.Contains("'tumor' is used twice", problem.Description, StringComparison.Ordinal);
    }

    [Fact]
    public void Values_must_be_unique_and_colours_well_formed()
    {
        var error = Assert.Throws<InvalidArgumentException>(() => WorkflowStore.Validate(Spec(labels: [new(1, "liver", [], Colour: "#12345"), new(1, "tumor", [])])));
        Assert.Equal(["workflow.labels[0].colour", "workflow.labels[1].value"], error.Problems.Select(p => p.Field).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_workflow_needs_a_label()
    {
        var error = Assert.Throws<InvalidArgumentException>(() => WorkflowStore.Validate(new WorkflowSpec("liver-ct", 501, null, [], null, null, null, true)));
        Assert.Equal("workflow.labels", Assert.Single(error.Problems).Field);
    }
}
