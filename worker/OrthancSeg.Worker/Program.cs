using OrthancSeg.Worker.Auth;
using OrthancSeg.Worker.Grpc;
using OrthancSeg.Worker.Hosting;
using OrthancSeg.Worker.Jobs;
using OrthancSeg.Worker.Logging;
using OrthancSeg.Worker.Orthanc;
using OrthancSeg.Worker.Persistence;

// Content root is the binary's folder, so appsettings.json is found whatever the working directory.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.AddOrthancSegLogging().AddOrthancSegPersistence().AddOrthancSegJobs().AddOrthancSegOrthanc().AddOrthancSegAuth().AddOrthancSegGrpc();

var app = builder.Build();
app.MapOrthancSegGrpc();
return await app.RunOrthancSegAsync();
