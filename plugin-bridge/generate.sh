#!/usr/bin/env bash
# Generates the bridge's Python gRPC modules from protos/orthancseg/v1/events.proto into
# plugin-bridge/generated/ (gitignored). Debian's toolchain is used on purpose: protoc 3.21
# (protobuf-compiler) and grpc_python_plugin 1.51 (protobuf-compiler-grpc) produce code that the
# python3-protobuf 3.21 / python3-grpcio 1.51 runtime inside Orthanc's Python plugin accepts,
# whereas a recent grpcio-tools emits gencode that this runtime refuses to import.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
protos="$here/../protos"
out="$here/generated"

for tool in protoc grpc_python_plugin; do
  if ! command -v "$tool" >/dev/null; then
    package=protobuf-compiler
    [[ $tool == grpc_python_plugin ]] && package=protobuf-compiler-grpc
    echo "generate.sh: $tool not found; install it with: apt-get install $package" >&2
    exit 1
  fi
done

# Generate into a temporary directory and swap it in, so an Orthanc starting meanwhile never
# imports half-written modules.
tmp="$(mktemp -d "$here/.generated.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
protoc --proto_path="$protos" \
  --python_out="$tmp" \
  --grpc_python_out="$tmp" \
  --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" \
  "$protos/orthancseg/v1/events.proto"
chmod -R a+rX "$tmp"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "generate.sh: wrote $(cd "$out" && find . -name '*.py' | sort | tr '\n' ' ')"
