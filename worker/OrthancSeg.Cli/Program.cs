using OrthancSeg.Cli;

return await CliApplication.RunAsync(args);
