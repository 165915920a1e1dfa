using OrthancSeg.Worker.Labels;

namespace OrthancSeg.Worker.Workflows;

/// <summary>A workflow as the worker uses it: identity, selection rule and label schema.</summary>
internal sealed record Workflow(
    long Id,
    string Name,
    int DatasetId,
    string DatasetName,
    string CaseKeyPrefix,
    byte[] CaseKeySalt,
    SelectionRule Selection,
    bool AllowOhifDefaultNames,
    string State,
    IReadOnlyList<LabelDefinition> Labels,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt)
{
    public const string Active = "active";
    public const string Paused = "paused";

    public bool IsActive => State == Active;

    public SegmentNameMapper Mapper() => new(Labels, AllowOhifDefaultNames);
}

/// <summary>Counts shown next to a workflow.</summary>
internal sealed record WorkflowCounts(long Cases, long LabeledCases);
