using OrthancSeg.Worker.Training;

namespace OrthancSeg.Worker.Tests.Training;

public sealed class NnUnetEpochParserTests
{
    // nnU-Net v2.1's output as recorded in ../shared/reference/nnunet.md (timestamps as nnU-Net prints them).
    private static readonly string[] Recorded =
    [
        "2026-12-04 10:00:00.000001: This split has 6 training and 2 validation cases.",
        "2026-12-04 10:00:00.000002: ",
        "2026-12-04 10:00:00.000003: Epoch 0",
        "2026-12-04 10:00:00.000004: Current learning rate: 0.01",
        "2026-12-04 10:01:35.000005: train_loss 1.1685",
        "2026-12-04 10:01:35.000006: val_loss 0.9005",
        "2026-12-04 10:01:35.000007: Pseudo dice [0.0794, 0.0016]",
        "2026-12-04 10:01:35.000008: Epoch time: 95.0 s",
        "2026-12-04 10:01:35.000009: Yayy! New best EMA pseudo Dice: 0.0405",
        "2026-12-04 10:01:35.000010: ",
        "2026-12-04 10:01:35.000011: Epoch 1",
        "2026-12-04 10:01:35.000012: Current learning rate: 0.00536",
        "2026-12-04 10:03:10.000013: train_loss -0.41",
        "2026-12-04 10:03:10.000014: val_loss -0.38",
        "2026-12-04 10:03:10.000015: Pseudo dice [np.float32(0.91), np.float32(0.77)]",
        "2026-12-04 10:03:10.000016: Epoch time: 12.3 s",
        "2026-12-04 10:03:10.000017: Epoch 2",
        "2026-12-04 10:03:10.000018: Current learning rate: 0.001",
    ];

    [Fact]
    public void Each_finished_epoch_is_read_with_its_losses_pseudo_Dice_and_time()
    {
        var parser = new NnUnetEpochParser("3");

        var epochs = Recorded.Select(parser.Feed).OfType<OrthancSeg.Contracts.V1.TrainingEpoch>().ToList();

        Assert.Equal(2, epochs.Count);
        Assert.All(epochs, e => Assert.Equal("3", e.Fold));
        Assert.Equal(0, epochs[0].Epoch);
        Assert.Equal(0.01, epochs[0].LearningRate);
        Assert.Equal(1.1685, epochs[0].TrainLoss);
        Assert.Equal(0.9005, epochs[0].ValLoss);
        Assert.Equal([0.0794, 0.0016], epochs[0].PseudoDice);
        Assert.Equal(95.0, epochs[0].EpochSeconds);
        Assert.Equal(1, epochs[1].Epoch);
        Assert.Equal(-0.41, epochs[1].TrainLoss);
        Assert.Equal(-0.38, epochs[1].ValLoss);
        // NumPy 2 prints np.float32(…): the 32 is not a Dice.
        Assert.Equal([0.91, 0.77], epochs[1].PseudoDice);
        Assert.Equal(12.3, epochs[1].EpochSeconds);
    }

    [Fact]
    public void The_latest_epoch_is_the_last_finished_one_and_lines_without_timestamps_parse_too()
    {
        var latest = NnUnetEpochParser.Latest("all", Recorded.Select(l => l[28..]));

        Assert.NotNull(latest);
        Assert.Equal(1, latest.Epoch);
        Assert.Null(NnUnetEpochParser.Latest("0", Recorded.Take(7)));
    }
}
