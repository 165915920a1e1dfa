# OrthancSeg: `make up` starts the stack, `make test` builds and runs every test.
SHELL := /bin/bash

.PHONY: build test test-bridge
build:
	dotnet build OrthancSeg.sln -c Release

test: build test-bridge
	dotnet test OrthancSeg.sln -c Release --no-build

# The Orthanc bridge: unit tests against a real gRPC server, then inside a real Orthanc
# (tests marked "orthanc"; they need Debian's orthanc and orthanc-python). The generated gRPC
# modules need protobuf-compiler and protobuf-compiler-grpc.
test-bridge:
	plugin-bridge/generate.sh
	/usr/bin/python3 -m pytest -q plugin-bridge/tests
