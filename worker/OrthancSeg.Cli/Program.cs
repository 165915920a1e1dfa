using OrthancSeg.Cli;

return await CliApplication.CreateRootCommand().Parse(args).InvokeAsync();
