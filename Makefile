# OrthancSeg: `make up` starts the whole stack on this machine, `make test` builds and runs every test.
# Knobs (ports, PostgreSQL, StableAge) are ORTHANCSEG_* environment variables: docs/operations.md.
SHELL := /bin/bash

.PHONY: up down status test build
up:
	@orthanc-config/stack.sh up

down:
	@orthanc-config/stack.sh down

status:
	@orthanc-config/stack.sh status

build:
	dotnet build OrthancSeg.sln -c Release --nologo

# Installs what is missing, builds, runs every runner (dotnet test per project, the bridge's pytest)
# and ends with one line "N passed, N failed[, N skipped]"; non-zero exit if anything failed.
test:
	@tests/run-tests.sh
