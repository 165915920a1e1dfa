using System.Text.Json;
using OrthancSeg.Worker.Training;

namespace OrthancSeg.Worker.Tests.Training;

public sealed class CrossValidationSplitsTests
{
    private static string[] Cases(int count, string prefix = "liver_") => [.. Enumerable.Range(0, count).Select(i => $"{prefix}{i:D3}")];

    [Fact]
    public void Every_case_validates_in_exactly_one_of_five_balanced_folds_and_trains_in_the_others()
    {
        var cases = Cases(23);

        var splits = CrossValidationSplits.Build(cases, "workflow-7");

        Assert.Equal(5, splits.Count);
        Assert.Equal(cases.Order(), splits.SelectMany(s => s.Val).Order());
        Assert.All(splits, s => Assert.InRange(s.Val.Count, 4, 5));
        Assert.All(splits, s => Assert.Equal(cases.Order(), s.Train.Concat(s.Val).Order()));
        Assert.All(splits, s => Assert.Empty(s.Train.Intersect(s.Val)));
    }

    [Fact]
    public void The_same_cases_and_seed_give_the_same_folds_and_another_seed_others()
    {
        var cases = Cases(40);

        var once = CrossValidationSplits.ToJson(CrossValidationSplits.Build(cases, "workflow-7"));
        var again = CrossValidationSplits.ToJson(CrossValidationSplits.Build([.. cases.Reverse()], "workflow-7"));
        var other = CrossValidationSplits.ToJson(CrossValidationSplits.Build(cases, "workflow-8"));

        Assert.Equal(once, again);
        Assert.NotEqual(once, other);
    }

    [Fact]
    public void Cases_keep_their_fold_in_the_next_snapshot_and_new_ones_fill_the_smallest_folds()
    {
        var first = CrossValidationSplits.Build(Cases(20), "w");
        var before = CrossValidationSplits.ValidationFolds(first);
        // The next snapshot lost two cases and gained seven.
        var next = Cases(20).Where(c => c is not ("liver_003" or "liver_011")).Concat(Cases(7, "new_")).ToList();

        var second = CrossValidationSplits.Build(next, "w", before);
        var after = CrossValidationSplits.ValidationFolds(second);

        Assert.All(next.Where(before.ContainsKey), c => Assert.Equal(before[c], after[c]));
        Assert.Equal(25, after.Count);
        Assert.All(second, s => Assert.Equal(5, s.Val.Count));
    }

    [Fact]
    public void The_file_is_the_list_nnunet_reads_and_reads_back()
    {
        using var directory = new TempDirectory();
        var path = Path.Combine(directory.Path, "Dataset501_LiverCT", "splits_final.json");
        var splits = CrossValidationSplits.Build(Cases(5), "w");

        CrossValidationSplits.Write(path, splits);
        using var json = JsonDocument.Parse(File.ReadAllText(path));

        Assert.Equal(JsonValueKind.Array, json.RootElement.ValueKind);
        Assert.All(json.RootElement.EnumerateArray(), fold => Assert.Equal(["train", "val"], fold.EnumerateObject().Select(p => p.Name)));
        Assert.Equal(CrossValidationSplits.ToJson(splits), CrossValidationSplits.ToJson(CrossValidationSplits.Read(path)));
        Assert.Single(Directory.GetFiles(Path.GetDirectoryName(path)!));
    }

    [Fact]
    public void Fewer_cases_than_folds_or_a_duplicate_are_refused()
    {
        Assert.Contains("train fold 'all' instead", Assert.Throws<ArgumentException>(() => CrossValidationSplits.Build(Cases(4), "w")).Message,
            StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => CrossValidationSplits.Build(["a", "b", "c", "d", "a"], "w"));
    }
}
