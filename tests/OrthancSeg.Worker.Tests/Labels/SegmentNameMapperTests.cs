using OrthancSeg.Worker.Labels;

namespace OrthancSeg.Worker.Tests.Labels;

public sealed class SegmentNameMapperTests
{
    private static readonly LabelDefinition[] Liver = [new(1, "liver", []), new(2, "tumor", ["lesion", "Metastasis"])];

    [Theory]
    [InlineData("liver", 1, "Name")]
    [InlineData(" LIVER ", 1, "Name")]
    [InlineData("Tumor", 2, "Name")]
    [InlineData("lesion", 2, "Synonym")]
    [InlineData("metastasis", 2, "Synonym")]
    [InlineData("Segment 2", 2, "OhifDefaultName")]
    [InlineData("segment  1", 1, "OhifDefaultName")]
    public void Names_synonyms_and_ohif_defaults_map_to_label_values(string name, int value, string how)
    {
        var match = new SegmentNameMapper(Liver, allowOhifDefaultNames: true).Map(name);
        Assert.Equal(value, match.LabelValue);
        Assert.Equal(Enum.Parse<SegmentMatch>(how), match.Match);
    }

    [Theory]
    [InlineData("Segment 3")]
    [InlineData("kidney")]
    [InlineData("")]
    [InlineData(null)]
    public void Unknown_names_and_ohif_numbers_without_a_label_are_unmatched(string? name)
    {
        var match = new SegmentNameMapper(Liver, allowOhifDefaultNames: true).Map(name);
        Assert.Equal(SegmentMatch.None, match.Match);
        Assert.Equal(0, match.LabelValue);
    }

    [Fact]
    public void Ohif_default_names_are_unmatched_when_the_workflow_disallows_them()
    {
        Assert.Equal(SegmentMatch.None, new SegmentNameMapper(Liver, allowOhifDefaultNames: false).Map("Segment 1").Match);
    }

    [Fact]
    public void Label_description_lists_names_values_and_synonyms()
    {
        Assert.Equal("liver (1), tumor (2; also: lesion, Metastasis)", new SegmentNameMapper(Liver, true).DescribeLabels());
    }
}
