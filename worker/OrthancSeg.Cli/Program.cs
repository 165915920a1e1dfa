using System.CommandLine;

var root = new RootCommand("OrthancSeg admin CLI");
return await root.Parse(args).InvokeAsync();
