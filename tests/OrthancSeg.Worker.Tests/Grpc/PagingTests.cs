using OrthancSeg.Contracts.V1;
using OrthancSeg.Worker.Errors;
using OrthancSeg.Worker.Grpc;

namespace OrthancSeg.Worker.Tests.Grpc;

public sealed class PagingTests
{
    [Fact]
    public void A_token_carries_the_last_key_back_to_the_same_request_whatever_its_page_size()
    {
        var first = new ListCasesRequest { Workflow = "liver-ct", Status = CaseStatus.Labeled, PageSize = 100 };
        var token = Paging.Token(first, 4711);

        var next = new ListCasesRequest { Workflow = "liver-ct", Status = CaseStatus.Labeled, PageSize = 10, PageToken = token };

        Assert.Equal(4711, Paging.IdFromToken(next));
        Assert.DoesNotContain('=', token);
        Assert.DoesNotContain('/', token);
        Assert.DoesNotContain('+', token);
    }

    [Fact]
    public void The_first_page_has_no_key()
    {
        Assert.Null(Paging.IdFromToken(new ListCasesRequest { Workflow = "liver-ct" }));
    }

    [Fact]
    public void A_token_passed_with_other_filters_is_refused_naming_the_field()
    {
        var token = Paging.Token(new ListCasesRequest { Workflow = "liver-ct" }, 10);

        var error = Assert.Throws<InvalidArgumentException>(() => Paging.IdFromToken(new ListCasesRequest { Workflow = "lung-ct", PageToken = token }));

        Assert.Equal("page_token", Assert.Single(error.Problems).Field);
        Assert.Contains("other filters", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_token_of_another_list_is_refused()
    {
        var token = Paging.Token(new ListSnapshotsRequest { Workflow = "liver-ct" }, 10);

        Assert.Throws<InvalidArgumentException>(() => Paging.IdFromToken(new ListJobsRequest { PageToken = token }));
    }

    [Theory]
    [InlineData("not base64!")]
    [InlineData("MTA")]
    [InlineData("djEuMDAwMDAwMDAwMDAwMDAwMC4xMA")]
    public void A_token_this_api_did_not_write_is_refused(string token)
    {
        var error = Assert.Throws<InvalidArgumentException>(() => Paging.IdFromToken(new ListCasesRequest { PageToken = token }));

        Assert.Equal("page_token", Assert.Single(error.Problems).Field);
    }

    [Fact]
    public void A_name_key_survives_the_round_trip()
    {
        var token = Paging.Token(new ListWorkflowsRequest { State = WorkflowState.Active }, "liver-ct.v2");

        Assert.Equal("liver-ct.v2", Paging.KeyFromToken(new ListWorkflowsRequest { State = WorkflowState.Active, PageToken = token }));
    }
}
