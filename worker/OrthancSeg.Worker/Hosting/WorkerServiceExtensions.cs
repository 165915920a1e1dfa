using OrthancSeg.Worker.Audit;
using OrthancSeg.Worker.Auth;
using OrthancSeg.Worker.Datasets;
using OrthancSeg.Worker.Events;
using OrthancSeg.Worker.Grpc;
using OrthancSeg.Worker.Inference;
using OrthancSeg.Worker.Jobs;
using OrthancSeg.Worker.Logging;
using OrthancSeg.Worker.Orthanc;
using OrthancSeg.Worker.Persistence;
using OrthancSeg.Worker.Training;

namespace OrthancSeg.Worker.Hosting;

internal static class WorkerServiceExtensions
{
    /// <summary>
    /// Every feature of the worker, one line each; a feature brings its own options, services and hosted
    /// services through its AddOrthancSegXxx(). Order matters only for hosted services: persistence comes
    /// first so migrations run before any feature's background loop starts.
    /// </summary>
    public static WebApplicationBuilder AddOrthancSegWorker(this WebApplicationBuilder builder)
    {
        builder.AddOrthancSegLogging();
        builder.AddOrthancSegPersistence();
        builder.AddOrthancSegJobs();
        builder.AddOrthancSegOrthanc();
        builder.AddOrthancSegAuth();
        builder.AddOrthancSegAudit();
        builder.AddOrthancSegGrpc();
        builder.AddOrthancSegRecords();
        builder.AddOrthancSegDatasets();
        builder.AddOrthancSegTraining();
        builder.AddOrthancSegInference();
        return builder;
    }
}
