using Microsoft.Extensions.Options;
using OrthancSeg.Worker.Training;

namespace OrthancSeg.Worker.Tests.Training;

public sealed class NnUnetCommandsTests
{
    private static readonly NnUnetPaths Paths = new("/data/nnUNet_raw", "/data/nnUNet_preprocessed", "/data/nnUNet_results");
    private static readonly NnUnetModelSpec Liver = new(501, "LiverCT", "3d_fullres");

    private static NnUnetCommands Commands(NnUnetOptions? options = null) => new(Options.Create(options ?? new NnUnetOptions()));

    [Fact]
    public void Preprocessing_verifies_the_dataset_cleans_the_old_fingerprint_and_uses_the_cpus_given()
    {
        var command = Commands().PlanAndPreprocess(Liver, Paths, cpus: 6);

        Assert.Equal(["nnUNetv2_plan_and_preprocess", "-d", "501", "-c", "3d_fullres", "--verify_dataset_integrity", "--clean", "-np", "6", "-npfp", "6"],
            command.Argv);
        Assert.Equal("/data/nnUNet_raw", command.Environment["nnUNet_raw"]);
        Assert.Equal("/data/nnUNet_preprocessed", command.Environment["nnUNet_preprocessed"]);
        Assert.Equal("/data/nnUNet_results", command.Environment["nnUNet_results"]);
    }

    [Fact]
    public void A_residual_encoder_preset_is_planned_with_its_planner()
    {
        var command = Commands().PlanAndPreprocess(Liver with { Plans = "nnUNetResEncUNetLPlans" }, Paths, cpus: 2);

        Assert.Equal(["-pl", "nnUNetPlannerResEncL"], command.Argv.TakeLast(2));
        Assert.Throws<ArgumentException>(() => Commands().PlanAndPreprocess(Liver with { Plans = "MyPlans" }, Paths, 2));
        Assert.Equal(["-pl", "MyPlanner"], Commands().PlanAndPreprocess(Liver with { Plans = "MyPlans" }, Paths, 2, planner: "MyPlanner").Argv.TakeLast(2));
    }

    [Fact]
    public void Training_names_fold_trainer_and_plans_and_gives_augmentation_the_cpus_but_one()
    {
        var command = Commands().Train(Liver with { Trainer = "nnUNetTrainer_250epochs" }, Paths, "3", gpus: 1, cpus: 8);

        Assert.Equal(["nnUNetv2_train", "501", "3d_fullres", "3", "-tr", "nnUNetTrainer_250epochs", "-p", "nnUNetPlans"], command.Argv);
        Assert.Equal("7", command.Environment["nnUNet_n_proc_DA"]);
    }

    [Fact]
    public void Without_a_gpu_nnunet_is_told_to_use_the_cpu()
    {
        var train = Commands().Train(Liver, Paths, "all", gpus: 0, cpus: 1, continueTraining: true);
        var predict = Commands().Predict(Liver, Paths, "/in", "/out", ["0", "1"], gpus: 0, cpus: 4);

        Assert.Equal(["all", "-tr", "nnUNetTrainer", "-p", "nnUNetPlans", "-device", "cpu", "--c"], train.Argv.Skip(3));
        Assert.Equal("1", train.Environment["nnUNet_n_proc_DA"]);
        Assert.Equal(["nnUNetv2_predict", "-i", "/in", "-o", "/out", "-d", "501", "-c", "3d_fullres", "-f", "0", "1", "-tr", "nnUNetTrainer",
            "-p", "nnUNetPlans", "-npp", "2", "-nps", "2", "-device", "cpu"], predict.Argv);
    }

    [Theory]
    [InlineData("5")]
    [InlineData("-1")]
    [InlineData("fold0")]
    public void Folds_outside_nnunets_range_are_refused(string fold) =>
        Assert.Throws<ArgumentException>(() => Commands().Train(Liver, Paths, fold, 1, 1));

    [Fact]
    public void Unknown_configurations_and_dataset_ids_are_refused()
    {
        Assert.Contains("unknown nnU-Net configuration '3d'", Assert.Throws<ArgumentException>(() => Commands().Train(Liver with { Configuration = "3d" }, Paths, "0", 1, 1)).Message,
            StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => Commands().PlanAndPreprocess(Liver with { DatasetId = 1000 }, Paths, 1));
    }

    [Fact]
    public void A_site_install_wrapper_and_setup_surround_the_command()
    {
        var options = new NnUnetOptions
        {
            BinDirectory = "/opt/nnunet/bin",
            Wrapper = ["apptainer", "exec", "--nv", "/images/nnunet.sif"],
            Setup = ["module load cuda/12.1"],
            Environment = new() { ["nnUNet_compile"] = "f" },
        };

        var command = Commands(options).Train(Liver, Paths, "0", 1, 4);

        Assert.Equal(["/bin/bash", "-c", "module load cuda/12.1\nexec \"$@\"", "orthancseg-nnunet", "apptainer", "exec", "--nv", "/images/nnunet.sif",
            "/opt/nnunet/bin/nnUNetv2_train", "501", "3d_fullres", "0", "-tr", "nnUNetTrainer", "-p", "nnUNetPlans"], command.Argv);
        Assert.Equal("f", command.Environment["nnUNet_compile"]);
    }

    [Fact]
    public async Task The_batch_script_runs_the_command_with_its_environment_and_quoting_intact()
    {
        using var directory = new TempDirectory();
        var echo = Scripts.Write(Path.Combine(directory.Path, "nnUNetv2_train"), """
            printf '%s|' "$@"; echo "raw=$nnUNet_raw"
            """);
        var command = Commands(new NnUnetOptions { BinDirectory = directory.Path })
            .Train(Liver with { Trainer = "it's \"odd\" $HOME" }, Paths with { Raw = "/data/with space/raw" }, "0", 1, 2);
        var script = Path.Combine(directory.Path, "job.sh");
        await File.WriteAllTextAsync(script, command.ToBatchScript());

        var result = await OrthancSeg.Worker.Training.ToolRunner.RunAsync("/bin/bash", [script], TimeSpan.FromSeconds(20));

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("501|3d_fullres|0|-tr|it's \"odd\" $HOME|-p|nnUNetPlans|raw=/data/with space/raw", result.StandardOutput.Trim());
    }

    [Fact]
    public async Task The_batch_script_leaves_the_exit_code_in_its_exit_file_and_exits_with_it()
    {
        using var directory = new TempDirectory();
        Scripts.Write(Path.Combine(directory.Path, "nnUNetv2_train"), "echo training; exit 3");
        var exitFile = Path.Combine(directory.Path, "it's done", "exit");
        Directory.CreateDirectory(Path.GetDirectoryName(exitFile)!);
        var script = Path.Combine(directory.Path, "job.sh");
        await File.WriteAllTextAsync(script, Commands(new NnUnetOptions { BinDirectory = directory.Path }).Train(Liver, Paths, "0", 1, 2).ToBatchScript(exitFile));

        var result = await OrthancSeg.Worker.Training.ToolRunner.RunAsync("/bin/bash", [script], TimeSpan.FromSeconds(20));

        Assert.Equal((3, "training"), (result.ExitCode, result.StandardOutput.Trim()));
        Assert.Equal(3, NnUnetCommand.ReadExitFile(exitFile)?.ExitCode);
        Assert.Null(NnUnetCommand.ReadExitFile(exitFile + ".absent"));
        Assert.False(File.Exists(exitFile + ".tmp"));
    }

    [Fact]
    public void Folders_default_beside_nnunet_raw_and_name_the_model_folder_as_nnunet_does()
    {
        var paths = new NnUnetOptions().Paths("/srv/stack/data/nnUNet_raw");

        if (Environment.GetEnvironmentVariable("nnUNet_preprocessed") is null && Environment.GetEnvironmentVariable("nnUNet_results") is null)
        {
            Assert.Equal(new NnUnetPaths("/srv/stack/data/nnUNet_raw", "/srv/stack/data/nnUNet_preprocessed", "/srv/stack/data/nnUNet_results"), paths);
        }
        Assert.Equal("Dataset501_LiverCT", Liver.DatasetFolderName);
        Assert.Equal("/data/nnUNet_results/Dataset501_LiverCT/nnUNetTrainer__nnUNetPlans__3d_fullres",
            Paths.ModelFolder(Liver.DatasetFolderName, "nnUNetTrainer", "nnUNetPlans", "3d_fullres"));
        Assert.Equal("/data/nnUNet_preprocessed/Dataset501_LiverCT/splits_final.json", Paths.SplitsFile(Liver.DatasetFolderName));
    }
}
