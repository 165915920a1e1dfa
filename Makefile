# OrthancSeg: `make up` starts the whole stack on this machine, `make test` builds and runs every test.
# Run make up/down/status as root (or with sudo): every part then runs as an unprivileged user (docs/operations.md).
# Knobs (ports, PostgreSQL, StableAge) are ORTHANCSEG_* environment variables: docs/operations.md.
SHELL := /bin/bash

.PHONY: up down status systemd-units link-bundle test build test-bridge
# One side of two machines (docs/deployment.md): make up ROLE=pacs|segmentation LISTEN=<this address> PEER=<other's>
# [LINK=bundle.tar]; the side made first writes the bundle the other side is given (make link-bundle writes it again).
LINK_VARS = $(if $(ROLE),ORTHANCSEG_ROLE='$(ROLE)') $(if $(PEER),ORTHANCSEG_PEER='$(PEER)') \
	$(if $(LISTEN),ORTHANCSEG_LISTEN='$(LISTEN)') $(if $(LINK),ORTHANCSEG_LINK_BUNDLE='$(abspath $(LINK))')
up:
	@$(LINK_VARS) orthanc-config/stack.sh up

link-bundle:
	@orthanc-config/stack.sh link-bundle

down:
	@orthanc-config/stack.sh down

status:
	@orthanc-config/stack.sh status

# Writes systemd units for the stack (.stack/systemd/) for sites whose init is systemd; docs/operations.md.
systemd-units:
	@orthanc-config/stack.sh systemd-units

build:
	dotnet build OrthancSeg.sln -c Release --nologo

# Installs what is missing, builds, runs every runner (dotnet test per project, the bridge's pytest)
# and ends with one line "N passed, N failed[, N skipped]"; non-zero exit if anything failed.
test:
	@tests/run-tests.sh

# The Orthanc bridge alone: unit tests against a real gRPC server, then inside a real Orthanc
# (tests marked "orthanc"). The generated gRPC modules need protobuf-compiler(-grpc).
test-bridge:
	plugin-bridge/generate.sh
	/usr/bin/python3 -m pytest -q plugin-bridge/tests
