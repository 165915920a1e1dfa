extern alias Cli;

using Cli::OrthancSeg.Cli.Output;

namespace OrthancSeg.IntegrationTests.Cli;

/// <summary>The CLI's table layout: fitted to a width by cutting free text, never ids.</summary>
public sealed class TableLayoutTests
{
    private static readonly string[] Header = ["CASE", "STATUS", "DESCRIPTION"];

    private static readonly IReadOnlyList<string>[] Rows =
    [
        ["liverct_k3m9x2ab", "labeled", "Abdomen CT portal venous phase 1.0 mm B30f"],
        ["liverct_a1b2c3d4", "unlabeled", "Liver"],
    ];

    private static bool DescriptionOnly(int column) => column == 2;

    [Fact]
    public void Without_a_width_every_cell_is_whole_and_columns_align()
    {
        var lines = TableLayout.Lines(Header, Rows, width: null, DescriptionOnly);

        Assert.Equal(
        [
            "CASE              STATUS     DESCRIPTION",
            "liverct_k3m9x2ab  labeled    Abdomen CT portal venous phase 1.0 mm B30f",
            "liverct_a1b2c3d4  unlabeled  Liver",
        ], lines);
    }

    [Fact]
    public void A_narrow_width_cuts_the_free_text_with_an_ellipsis_and_keeps_the_keys()
    {
        var lines = TableLayout.Lines(Header, Rows, width: 50, DescriptionOnly);

        Assert.All(lines, l => Assert.True(l.Length <= 50, $"'{l}' is {l.Length} wide"));
        Assert.Equal("liverct_k3m9x2ab  labeled    Abdomen CT portal ve…", lines[1]);
        Assert.Equal("liverct_a1b2c3d4  unlabeled  Liver", lines[2]);
    }

    [Fact]
    public void The_widest_free_text_column_gives_way_first()
    {
        string[] header = ["ID", "REASON", "ERROR"];
        IReadOnlyList<string>[] rows = [["7", "short reason", new string('e', 40)]];

        var lines = TableLayout.Lines(header, rows, width: 40, _ => true);

        Assert.Equal($"7   short reason  {new string('e', 21)}…", lines[1]);
        Assert.Equal(40, lines[1].Length);
    }

    [Fact]
    public void Keys_wider_than_the_terminal_stay_whole_and_free_text_stops_at_its_header()
    {
        string[] header = ["SOP INSTANCE UID", "REASON"];
        IReadOnlyList<string>[] rows = [["1.2.826.0.1.3680043.8.498.12345678901234567890", "referenced series is not a case"]];

        var lines = TableLayout.Lines(header, rows, width: 30, c => c == 1);

        Assert.Equal("1.2.826.0.1.3680043.8.498.12345678901234567890  refer…", lines[1]);
        Assert.StartsWith("SOP INSTANCE UID", lines[0], StringComparison.Ordinal);
    }

    [Fact]
    public void Progress_on_a_terminal_draws_a_bar_with_percentage_counts_and_elapsed_time()
    {
        var text = ConsoleOutput.ProgressText("snapshot 3", 3, 6, "cases", "running", TimeSpan.FromSeconds(72), bar: true);
        var plain = ConsoleOutput.ProgressText("snapshot 3", 3, 6, "cases", "running", elapsed: null, bar: false);

        Assert.Equal($"snapshot 3  [{new string('#', 15)}{new string('-', 15)}]   50%  3/6 cases  01:12  running", text);
        Assert.Equal("snapshot 3   50%  3/6 cases  running", plain);
    }
}
