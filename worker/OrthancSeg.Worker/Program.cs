using OrthancSeg.Worker.Grpc;

var builder = WebApplication.CreateBuilder(args);
builder.AddOrthancSegGrpc();

var app = builder.Build();
app.MapOrthancSegGrpc();
app.Run();
