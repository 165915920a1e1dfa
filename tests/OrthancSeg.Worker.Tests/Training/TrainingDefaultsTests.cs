using OrthancSeg.Contracts.V1;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Training;

namespace OrthancSeg.Worker.Tests.Training;

public sealed class TrainingDefaultsTests
{
    private static TrainingDefaults WorkflowDefaults()
    {
        var defaults = new TrainingDefaults
        {
            Configuration = "2d",
            Trainer = "nnUNetTrainer_250epochs",
            Plans = "nnUNetResEncUNetMPlans",
            Backend = TrainingBackend.Slurm,
            Resources = new TrainingResources { Gpus = 0, Cpus = 4, MemoryMib = 16_000, TimeLimitSeconds = 3600, Partition = "gpu" },
        };
        defaults.Folds.Add("all");
        return defaults;
    }

    [Fact]
    public void A_request_that_sets_nothing_takes_every_default_of_the_workflow()
    {
        var merged = TrainingDefaultsRules.Apply(new StartTrainingRequest { Workflow = "liver-ct" }, WorkflowDefaults());

        Assert.Equal("liver-ct", merged.Workflow);
        Assert.Equal("2d", merged.Configuration);
        Assert.Equal("nnUNetTrainer_250epochs", merged.Trainer);
        Assert.Equal("nnUNetResEncUNetMPlans", merged.Plans);
        Assert.Equal(["all"], merged.Folds);
        Assert.Equal(TrainingBackend.Slurm, merged.Backend);
        Assert.True(merged.Resources.HasGpus);
        Assert.Equal(0, merged.Resources.Gpus);
        Assert.Equal(4, merged.Resources.Cpus);
        Assert.Equal(16_000, merged.Resources.MemoryMib);
        Assert.Equal(3600, merged.Resources.TimeLimitSeconds);
        Assert.Equal("gpu", merged.Resources.Partition);
    }

    [Fact]
    public void Each_field_the_request_sets_overrides_the_workflow_and_the_others_are_kept()
    {
        var request = new StartTrainingRequest
        {
            Workflow = "liver-ct",
            Configuration = "3d_fullres",
            Backend = TrainingBackend.Local,
            Resources = new TrainingResources { Gpus = 2, MemoryMib = 8000 },
        };
        request.Folds.AddRange(["0", "1"]);

        var merged = TrainingDefaultsRules.Apply(request, WorkflowDefaults());

        Assert.Equal("3d_fullres", merged.Configuration);
        Assert.Equal(["0", "1"], merged.Folds);
        Assert.Equal(TrainingBackend.Local, merged.Backend);
        Assert.Equal(2, merged.Resources.Gpus);
        Assert.Equal(8000, merged.Resources.MemoryMib);
        // Left unset by the request: the workflow's.
        Assert.Equal("nnUNetTrainer_250epochs", merged.Trainer);
        Assert.Equal(4, merged.Resources.Cpus);
        Assert.Equal(3600, merged.Resources.TimeLimitSeconds);
        Assert.Equal("gpu", merged.Resources.Partition);
    }

    [Fact]
    public void Zero_GPUs_asked_explicitly_wins_over_a_workflow_default_of_one_and_unset_GPUs_stay_unset_without_defaults()
    {
        var defaults = new TrainingDefaults { Resources = new TrainingResources { Gpus = 1 } };

        var cpu = TrainingDefaultsRules.Apply(new StartTrainingRequest { Resources = new TrainingResources { Gpus = 0 } }, defaults);
        var none = TrainingDefaultsRules.Apply(new StartTrainingRequest(), null);

        Assert.True(cpu.Resources.HasGpus);
        Assert.Equal(0, cpu.Resources.Gpus);
        Assert.True(none.Resources is null || !none.Resources.HasGpus);
        Assert.Empty(none.Folds);
    }

    [Fact]
    public void A_request_naming_other_plans_does_not_inherit_the_workflows_planner()
    {
        var defaults = new TrainingDefaults { Plans = "MyPlans", Planner = "MyPlanner" };

        Assert.Equal("MyPlanner", TrainingDefaultsRules.Apply(new StartTrainingRequest(), defaults).Planner);
        Assert.Equal("", TrainingDefaultsRules.Apply(new StartTrainingRequest { Plans = "nnUNetPlans" }, defaults).Planner);
    }

    [Fact]
    public void The_request_is_not_changed()
    {
        var request = new StartTrainingRequest { Workflow = "liver-ct" };

        TrainingDefaultsRules.Apply(request, WorkflowDefaults());

        Assert.Equal(new StartTrainingRequest { Workflow = "liver-ct" }, request);
    }

    [Fact]
    public void Defaults_and_policies_that_no_run_could_use_are_refused_naming_the_field()
    {
        var defaults = new TrainingDefaults { Configuration = "4d", Resources = new TrainingResources { Cpus = -1 } };
        defaults.Folds.AddRange(["0", "7"]);

        var error = Assert.Throws<InvalidArgumentException>(() => TrainingDefaultsRules.Validate(defaults,
            new RetrainPolicy { Enabled = true, MinNewLabels = 0, MinDiceImprovement = 2 }));

        var fields = error.Problems.Select(p => p.Field).ToList();
        Assert.Contains("workflow.training_defaults.configuration", fields);
        Assert.Contains("workflow.training_defaults.folds", fields);
        Assert.Contains("workflow.training_defaults.resources", fields);
        Assert.Contains("workflow.retrain_policy.min_new_labels", fields);
        Assert.Contains("workflow.retrain_policy.min_dice_improvement", fields);
        Assert.Contains(error.Problems, p => p.Description.Contains("'7' is out of range", StringComparison.Ordinal));
    }

    [Fact]
    public void Empty_defaults_and_a_policy_that_is_off_are_valid()
    {
        TrainingDefaultsRules.Validate(new TrainingDefaults(), new RetrainPolicy());
        TrainingDefaultsRules.Validate(null, new RetrainPolicy { Enabled = true, MinNewLabels = 3, MinDiceImprovement = -0.02 });
    }

    [Theory]
    [InlineData(0.80, 0.80, 0.0, true)]
    [InlineData(0.79, 0.80, 0.0, false)]
    [InlineData(0.79, 0.80, -0.02, true)]
    [InlineData(0.81, 0.80, 0.02, false)]
    [InlineData(0.83, 0.80, 0.02, true)]
    public void The_new_model_is_activated_only_when_not_worse_than_the_policy_allows(double fresh, double active, double tolerance, bool expected)
    {
        var (activate, reason) = RetrainStore.Decide(fresh, 7, active, tolerance);

        Assert.Equal(expected, activate);
        Assert.Contains("active model 7", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_an_active_model_the_new_one_is_activated_and_without_its_own_Dice_it_is_not()
    {
        Assert.Equal((true, "no model was active"), RetrainStore.Decide(0.1, null, null, 0));
        Assert.False(RetrainStore.Decide(null, 7, 0.8, -1).Activate);
    }
}
