using OrthancSeg.Contracts.V1;
using OrthancSeg.Worker.Audit;

namespace OrthancSeg.Worker.Tests.Audit;

public sealed class AuditResourceTests
{
    [Fact]
    public void A_request_naming_its_resource_by_name_or_id_is_recorded_as_field_equals_value()
    {
        Assert.Equal("name=liver-ct", AuditResource.Of(new PauseWorkflowRequest { Name = "liver-ct" }));
        Assert.Equal("id=42", AuditResource.Of(new CancelJobRequest { Id = 42 }));
        Assert.Equal("workflow=liver-ct", AuditResource.Of(new ExportSnapshotRequest { Workflow = "liver-ct" }));
    }

    [Fact]
    public void Identifying_fields_of_a_nested_message_are_named_by_their_path_and_the_rest_is_left_out()
    {
        var request = new CreateWorkflowRequest
        {
            Workflow = new Workflow { Name = "liver-ct", DatasetId = 3, Selection = new SelectionRule { Modality = "CT" }, Labels = { new LabelDefinition { Value = 1, Name = "liver" } } },
        };

        Assert.Equal("workflow.name=liver-ct, workflow.dataset_id=3", AuditResource.Of(request));
    }

    [Fact]
    public void Unset_fields_and_fields_that_identify_nothing_are_not_recorded()
    {
        Assert.Equal("workflow=liver-ct", AuditResource.Of(new StartTrainingRequest { Workflow = "liver-ct", Configuration = "3d_fullres", Folds = { "0" } }));
        Assert.Equal("workflow=liver-ct, snapshot_id=7", AuditResource.Of(new StartTrainingRequest { Workflow = "liver-ct", SnapshotId = 7 }));
        Assert.Equal("", AuditResource.Of(new CancelJobRequest()));
        Assert.Equal("", AuditResource.Of(null));
    }
}
