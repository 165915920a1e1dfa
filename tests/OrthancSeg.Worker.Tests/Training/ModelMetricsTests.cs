using OrthancSeg.Worker.Training;

namespace OrthancSeg.Worker.Tests.Training;

public sealed class ModelMetricsTests : IDisposable
{
    private readonly string _model = Directory.CreateTempSubdirectory("orthancseg-model-").FullName;

    public void Dispose() => Directory.Delete(_model, recursive: true);

    private void Summary(string fold, string json)
    {
        var folder = Path.Combine(_model, $"fold_{fold}", "validation");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "summary.json"), json);
    }

    [Fact]
    public void The_model_dice_is_the_folds_summary_dice_averaged_with_nnunets_bare_nan_counted_as_missing()
    {
        // As nnU-Net writes it (json.dump with allow_nan): a label absent from reference and prediction has Dice NaN.
        Summary("0", """{"foreground_mean": {"Dice": 0.75, "IoU": 0.5}, "mean": {"1": {"Dice": 0.875}, "2": {"Dice": 0.625}}, "metric_per_case": []}""");
        Summary("1", """{"foreground_mean": {"Dice": 0.25, "IoU": NaN}, "mean": {"1": {"Dice": 0.375}, "2": {"Dice": NaN}}, "metric_per_case": []}""");

        var metrics = TrainingStepRunner.ReadMetrics(_model, ["0", "1", "2"]);

        Assert.Equal(_model, metrics.Location);
        Assert.Equal(0.5, metrics.MeanDice);
        Assert.Equal("""{"1":0.625,"2":0.625}""", metrics.LabelDiceJson);
    }

    [Fact]
    public void A_model_whose_folds_wrote_no_summary_has_no_dice()
    {
        var metrics = TrainingStepRunner.ReadMetrics(_model, ["all"]);

        Assert.Null(metrics.MeanDice);
        Assert.Equal("{}", metrics.LabelDiceJson);
    }

    [Fact]
    public void Training_options_outside_their_ranges_are_refused_at_start_with_each_reason()
    {
        var result = new TrainingOptionsValidator().Validate(null, new TrainingOptions
        {
            DefaultBackend = "kubernetes",
            Concurrency = 0,
            RunsRoot = "relative/runs",
        });

        Assert.True(result.Failed);
        Assert.Equal(3, result.Failures!.Count());
        Assert.Contains(result.Failures!, f => f.Contains("DefaultBackend must be local or slurm", StringComparison.Ordinal));
        Assert.True(new TrainingOptionsValidator().Validate(null, new TrainingOptions()).Succeeded);
    }
}
