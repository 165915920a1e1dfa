using OrthancSeg.Worker.Workflows;

namespace OrthancSeg.Worker.Tests.Workflows;

public sealed class SelectionRuleTests
{
    [Fact]
    public void Modality_and_description_pattern_admit_a_matching_series()
    {
        var rule = new SelectionRule("CT", "(?i)abdomen|liver", null);
        Assert.True(rule.Matches(new SeriesFacts("CT", "ABDOMEN 5mm", "CHEST")));
        Assert.True(rule.Matches(new SeriesFacts("ct", "Liver arterial", null)));
    }

    [Fact]
    public void Other_modality_or_description_is_not_admitted()
    {
        var rule = new SelectionRule("CT", "(?i)abdomen|liver", null);
        Assert.False(rule.Matches(new SeriesFacts("MR", "Abdomen", null)));
        Assert.False(rule.Matches(new SeriesFacts("CT", "Head", null)));
        Assert.False(rule.Matches(new SeriesFacts("CT", null, null)));
    }

    [Fact]
    public void Body_part_compares_case_insensitively_and_requires_a_value()
    {
        var rule = new SelectionRule(null, null, "abdomen");
        Assert.True(rule.Matches(new SeriesFacts("CT", "x", "ABDOMEN")));
        Assert.False(rule.Matches(new SeriesFacts("CT", "x", null)));
    }

    [Fact]
    public void Empty_rule_admits_everything()
    {
        Assert.True(new SelectionRule(" ", "", null).Matches(new SeriesFacts(null, null, null)));
    }

    [Fact]
    public void Invalid_pattern_is_reported_with_the_pattern()
    {
        var error = Assert.Throws<ArgumentException>(() => new SelectionRule("CT", "(abdomen", null));
        Assert.Contains("(abdomen", error.Message, StringComparison.Ordinal);
    }
}
