using OrthancSeg.Worker.Persistence;

namespace OrthancSeg.Worker.Tests.Persistence;

public sealed class StoredTextTests
{
    [Fact]
    public void A_nul_and_other_control_characters_are_written_out_so_postgresql_takes_them_and_a_person_sees_them()
    {
        Assert.Equal("liver\\u0000\\u001B[31m\\u0085", StoredText.Clean("liver\0\u001b[31m\u0085", StoredText.NameLength));
    }

    [Fact]
    public void Ordinary_text_is_kept_as_it_is_emoji_and_accents_included()
    {
        const string text = "Tumeur hépatique 😀 'quoted' \\ back";
        Assert.Same(text, StoredText.Clean(text, StoredText.NameLength));
    }

    [Fact]
    public void A_lone_surrogate_that_no_encoder_takes_is_escaped()
    {
        Assert.Equal("a\\uD83Db", StoredText.Clean("a\ud83db", StoredText.NameLength));
    }

    [Fact]
    public void Overlong_text_is_cut_saying_how_much_was_cut()
    {
        var cleaned = StoredText.Clean(new string('x', 20_000), StoredText.NameLength);

        Assert.Equal(new string('x', 256) + "… (19744 more characters)", cleaned);
    }

    [Fact]
    public void Long_identifiers_that_share_a_beginning_stay_distinct_and_bounded()
    {
        var first = StoredText.Identifier("1.2.3." + new string('4', 300) + "1");
        var second = StoredText.Identifier("1.2.3." + new string('4', 300) + "2");

        Assert.NotEqual(first, second);
        Assert.True(first.Length <= StoredText.IdentifierLength, first);
        Assert.StartsWith("1.2.3.444", first, StringComparison.Ordinal);
        Assert.Equal("1.2.840.10008.5.1.4.1.1.66.4", StoredText.Identifier("1.2.840.10008.5.1.4.1.1.66.4"));
        Assert.Equal("1.2.3\\u0000", StoredText.Identifier("1.2.3\0"));
    }

    [Fact]
    public void References_keep_only_what_can_name_a_stored_uid()
    {
        var references = StoredText.References(["1.2.3", "1.2.3", "1.2.\0", "", new string('1', 65), "1.2 3", "9.8.7"]);

        Assert.Equal(["1.2.3", "9.8.7"], references);
        Assert.Equal(10, StoredText.References(Enumerable.Range(0, 100).Select(i => $"1.{i}"), maxCount: 10).Count);
    }
}
