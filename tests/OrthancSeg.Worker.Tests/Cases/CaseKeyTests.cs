using OrthancSeg.Worker.Cases;

namespace OrthancSeg.Worker.Tests.Cases;

public sealed class CaseKeyTests
{
    private static readonly byte[] Salt = [1, 2, 3, 4, 5, 6, 7, 8];

    [Fact]
    public void Same_series_in_the_same_workflow_gets_the_same_key()
    {
        Assert.Equal(CaseKey.For("liverct", Salt, "1.2.3.4"), CaseKey.For("liverct", Salt, "1.2.3.4"));
    }

    [Fact]
    public void Key_is_the_prefix_and_eight_base32_characters_without_the_uid()
    {
        var key = CaseKey.For("liverct", Salt, "1.2.840.113619.2.55.3");
        Assert.Matches("^liverct_[a-z2-7]{8}$", key);
        Assert.DoesNotContain("113619", key, StringComparison.Ordinal);
    }

    [Fact]
    public void Different_series_or_salt_give_different_keys()
    {
        var keys = Enumerable.Range(0, 1000).Select(i => CaseKey.For("x", Salt, $"1.2.3.{i}")).ToHashSet();
        Assert.Equal(1000, keys.Count);
        Assert.NotEqual(CaseKey.For("x", Salt, "1.2.3"), CaseKey.For("x", [9, 9], "1.2.3"));
    }

    [Theory]
    [InlineData("liver-ct", "liverct")]
    [InlineData("Lung-CT-2", "lungct2")]
    [InlineData("---", "case")]
    public void Prefix_keeps_letters_and_digits(string name, string prefix)
    {
        Assert.Equal(prefix, CaseKey.PrefixFor(name));
    }
}
