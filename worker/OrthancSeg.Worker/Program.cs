using OrthancSeg.Worker.Grpc;
using OrthancSeg.Worker.Hosting;

// Content root is the binary's folder, so appsettings.json is found whatever the working directory.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.AddOrthancSegWorker();

var app = builder.Build();
app.MapOrthancSegGrpc();
return await app.RunOrthancSegAsync();
