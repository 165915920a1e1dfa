using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using Grpc.Core;
using OrthancSeg.Contracts.V1;
using OrthancSeg.Dicom;
using OrthancSeg.IntegrationTests.Fixtures;
using OrthancSeg.Tests.Support;

namespace OrthancSeg.Benchmarks;

/// <summary>
/// `inference`: the worker's own time from "series stable" to "SEG stored in Orthanc" for a 512×512×200 CT, the predictor excluded. A stack of
/// its own (throwaway PostgreSQL, Orthanc with the bridge, the built worker) and the nnU-Net stand-ins: a model is trained on six tiny labelled
/// series and activated with auto-inference on, then the CT is uploaded. The figures come from the records: from the series job's creation
/// (the bridge's stable-series push) to the inference's end, minus the predictor's time; and the inference attempt's own worker time.
/// </summary>
internal static class InferenceBenchmark
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(10);

    public static int Run(string[] args)
    {
        var slices = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 200;
        return RunAsync(slices).GetAwaiter().GetResult();
    }

    private static async Task<int> RunAsync(int slices)
    {
        var root = Directory.CreateTempSubdirectory("orthancseg-inference-bench-").FullName;
        try
        {
            await using var orthanc = new OrthancServer();
            await orthanc.InitializeAsync();
            using var http = orthanc.CreateClient();
            var adminToken = Path.Combine(root, "admin-token");
            await File.WriteAllTextAsync(adminToken, Guid.NewGuid().ToString("N"));
            await ProcessRunner.RunAsync("chmod", ["600", adminToken], TimeSpan.FromSeconds(10));
            var raw = Path.Combine(root, "nnUNet_raw");
            Directory.CreateDirectory(raw);
            var standIns = Path.Combine(RepositoryPaths.Root, "tests", "nnunet-standin");
            await using var worker = await WorkerProcess.StartAsync(orthanc.Postgres, new Dictionary<string, string>
            {
                ["OrthancSeg:Orthanc:Url"] = orthanc.BaseUrl.ToString(),
                ["OrthancSeg:Orthanc:Username"] = OrthancServer.Username,
                ["OrthancSeg:Orthanc:PasswordFile"] = orthanc.PasswordFile,
                ["Kestrel:Endpoints:Grpc:Url"] = $"http://127.0.0.1:{orthanc.WorkerPort}",
                ["OrthancSeg:Auth:BridgeTokenFile"] = orthanc.BridgeTokenFile,
                ["OrthancSeg:Auth:AdminTokenFile"] = adminToken,
                ["OrthancSeg:Jobs:PollInterval"] = "00:00:00.200",
                ["OrthancSeg:Datasets:RawRoot"] = raw,
                ["OrthancSeg:Training:NnUnet:BinDirectory"] = standIns,
                ["OrthancSeg:Training:NnUnet:Environment:ORTHANCSEG_STANDIN_EPOCHS"] = "1",
                ["OrthancSeg:Training:NnUnet:Environment:ORTHANCSEG_STANDIN_STEP_SECONDS"] = "0",
                ["OrthancSeg:Training:Local:Gpus:0"] = "0",
                ["OrthancSeg:Training:Local:Cpus"] = "2",
                ["OrthancSeg:Training:Local:MemoryMiB"] = "8000",
                ["OrthancSeg:Inference:Cpus"] = "1",
                ["OrthancSeg:Inference:MemoryMiB"] = "1000",
                ["Serilog:MinimumLevel:Default"] = "Warning",
            });
            using var channel = worker.CreateChannel();
            var headers = WorkerProcess.Bearer((await File.ReadAllTextAsync(adminToken)).Trim());
            var caseClient = new CaseService.CaseServiceClient(channel);
            var snapshotClient = new SnapshotService.SnapshotServiceClient(channel);
            var workflowClient = new WorkflowService.WorkflowServiceClient(channel);
            var training = new TrainingService.TrainingServiceClient(channel);
            var models = new ModelService.ModelServiceClient(channel);
            var inference = new InferenceService.InferenceServiceClient(channel);

            await workflowClient.CreateWorkflowAsync(new CreateWorkflowRequest
            {
                Workflow = new Workflow
                {
                    Name = "bench-ct",
                    DatasetId = 903,
                    Selection = new SelectionRule { Modality = "CT" },
                    Labels = { new LabelDefinition { Value = 1, Name = "liver" }, new LabelDefinition { Value = 2, Name = "tumor" } },
                },
            }, headers);

            // The model: six tiny labelled series, a snapshot, fold 0 trained by the stand-ins, activated.
            var tiny = Enumerable.Range(0, 6).Select(_ => new TestSeries(slices: 4, rows: 16, columns: 16)).ToList();
            foreach (var file in tiny.SelectMany(s => s.Files()))
            {
                await UploadAsync(http, DicomWriter.ToBytes(file));
            }
            await WaitAsync(async () => (await caseClient.ListCasesAsync(new ListCasesRequest { Workflow = "bench-ct" }, headers)).Cases.Count == 6, "6 cases");
            foreach (var s in tiny)
            {
                await UploadAsync(http, DicomWriter.ToBytes(s.Seg([new(1, "liver"), new(2, "tumor")], [new(1, 1), new(2, 2)])));
            }
            await WaitAsync(async () => (await caseClient.ListCasesAsync(new ListCasesRequest { Workflow = "bench-ct", Status = CaseStatus.Labeled }, headers)).Cases.Count == 6,
                "6 labelled cases");
            var snapshot = (await snapshotClient.ExportSnapshotAsync(new ExportSnapshotRequest { Workflow = "bench-ct" }, headers)).Snapshot;
            await WaitAsync(async () => (await snapshotClient.GetSnapshotAsync(new GetSnapshotRequest { Id = snapshot.Id }, headers)).Snapshot.State == SnapshotState.Succeeded,
                "the snapshot");
            var run = (await training.StartTrainingAsync(new StartTrainingRequest
            {
                Workflow = "bench-ct",
                SnapshotId = snapshot.Id,
                Folds = { "0" },
                Backend = TrainingBackend.Local,
                Resources = new TrainingResources { Gpus = 1, Cpus = 1, MemoryMib = 1000, TimeLimitSeconds = 600 },
            }, headers)).Run;
            TrainingRun? trained = null;
            await WaitAsync(async () => (trained = (await training.GetTrainingRunAsync(new GetTrainingRunRequest { Id = run.Id }, headers)).Run).State
                is TrainingState.Succeeded or TrainingState.Failed or TrainingState.Cancelled, "the training run");
            if (trained!.State != TrainingState.Succeeded)
            {
                Console.Error.WriteLine($"training ended {trained.State}: {trained.Error}");
                return 1;
            }
            await models.ActivateModelAsync(new ActivateModelRequest { Id = trained.ModelId }, headers);
            await workflowClient.UpdateWorkflowAsync(new UpdateWorkflowRequest
            {
                Workflow = new Workflow { Name = "bench-ct", Inference = new InferencePolicy { AutoInfer = true } },
                UpdateMask = new Google.Protobuf.WellKnownTypes.FieldMask { Paths = { "inference" } },
            }, headers);

            // The measured series.
            using var ct = await CtSeries.CreateAsync(slices, 512);
            var upload = Stopwatch.StartNew();
            foreach (var file in ct.Files)
            {
                await UploadAsync(http, await File.ReadAllBytesAsync(file));
            }
            upload.Stop();
            Inference? done = null;
            await WaitAsync(async () =>
            {
                done = (await inference.ListInferencesAsync(new ListInferencesRequest { Workflow = "bench-ct" }, headers)).Inferences.FirstOrDefault();
                return done is { State: InferenceState.Succeeded or InferenceState.Failed or InferenceState.Cancelled };
            }, "the inference of the CT");
            if (done!.State != InferenceState.Succeeded || done.Outcome != InferenceOutcome.SegStored)
            {
                Console.Error.WriteLine($"inference {done.Id} ended {done.State} {done.Outcome}: {done.Error}");
                return 1;
            }
            var stableToStored = await RecordsBenchmark.ScalarAsync(worker.ConnectionString, $"""
                SELECT (extract(epoch FROM (i.finished_at - j.created_at)) * 1000)::bigint
                FROM inferences i JOIN cases c ON c.id = i.case_id
                JOIN jobs j ON j.kind = 'series' AND j.payload->>'orthanc_series_id' = c.orthanc_series_id
                WHERE i.id = {done.Id}
                ORDER BY j.id LIMIT 1
                """);
            var withoutPredictor = stableToStored - done.PredictorMs;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"inference benchmark: 512×512×{slices} CT ({ct.Files.Count} files uploaded in {upload.Elapsed.TotalSeconds:0.0} s), {Environment.ProcessorCount} cores"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"series stable → SEG stored in Orthanc: {stableToStored} ms, of which the predictor (stand-in nnUNetv2_predict) {done.PredictorMs} ms"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"worker's own time, predictor excluded: {withoutPredictor} ms (goal < 2000 ms; recording the case, queueing, fetching the series, writing the image, reading the prediction, writing, storing and recording the SEG)"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  of which the inference attempt's own work (fetch, write, read, SEG, upload, record): {done.WorkerMs} ms"));
            return withoutPredictor < 2000 ? 0 : 1;
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static async Task UploadAsync(HttpClient http, byte[] part10)
    {
        using var content = new ByteArrayContent(part10);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
        using var response = await http.PostAsync(new Uri("instances", UriKind.Relative), content);
        response.EnsureSuccessStatusCode();
    }

    private static async Task WaitAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (!await condition())
        {
            if (deadline.Elapsed > Patience)
            {
                throw new TimeoutException($"{what} did not happen within {Patience}");
            }
            await Task.Delay(100);
        }
    }
}
