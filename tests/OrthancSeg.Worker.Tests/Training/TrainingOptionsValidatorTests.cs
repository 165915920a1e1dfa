using OrthancSeg.Worker.Training;
using OrthancSeg.Worker.Training.Local;
using OrthancSeg.Worker.Training.Slurm;

namespace OrthancSeg.Worker.Tests.Training;

public sealed class TrainingOptionsValidatorTests
{
    [Fact]
    public void The_defaults_are_valid()
    {
        Assert.True(new NnUnetOptionsValidator().Validate(null, new NnUnetOptions()).Succeeded);
        Assert.True(new LocalOptionsValidator().Validate(null, new LocalOptions()).Succeeded);
        Assert.True(new SlurmOptionsValidator().Validate(null, new SlurmOptions()).Succeeded);
    }

    [Fact]
    public void Bad_settings_are_named_with_their_section()
    {
        var nnunet = new NnUnetOptionsValidator().Validate(null, new NnUnetOptions { TrainCommand = " ", BinDirectory = "venv/bin" });
        var local = new LocalOptionsValidator().Validate(null, new LocalOptions { Gpus = ["0", "0,1", "0"], Cpus = -1 });
        var slurm = new SlurmOptionsValidator().Validate(null, new SlurmOptions { CommandTimeout = TimeSpan.Zero, Export = "SOME" });

        Assert.Equal(["OrthancSeg:Training:NnUnet:TrainCommand must name a command",
            "OrthancSeg:Training:NnUnet:BinDirectory must be an absolute path, not 'venv/bin'"], nnunet.Failures);
        Assert.Equal(["OrthancSeg:Training:Local:Cpus must be 0 (all) or more, not -1",
            "OrthancSeg:Training:Local:Gpus entries must be single non-empty CUDA_VISIBLE_DEVICES values",
            "OrthancSeg:Training:Local:Gpus lists a GPU twice"], local.Failures);
        Assert.Equal(["OrthancSeg:Training:Slurm:CommandTimeout must be 1 s..10 min, not 00:00:00",
            "OrthancSeg:Training:Slurm:Export must be NONE or ALL, not 'SOME'"], slurm.Failures);
    }
}
