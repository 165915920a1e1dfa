#!/usr/bin/env bash
# Generates the bridge's Python gRPC modules from protos/orthancseg/v1/events.proto (and options.proto, which it imports) into
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

if [[ ! -f /usr/include/google/protobuf/descriptor.proto ]]; then
  echo "generate.sh: google/protobuf/descriptor.proto (imported by options.proto) not found; install it with: apt-get install libprotobuf-dev" >&2
  exit 1
fi

# Concurrent runs (test fixtures, `make up`) take turns, and a run finds nothing to do when the
# modules are newer than the .proto and this script.
exec 9>"$here/.generate.lock"
flock 9
proto="$protos/orthancseg/v1/events.proto"
options="$protos/orthancseg/v1/options.proto"
if [[ -f "$out/orthancseg/v1/events_pb2_grpc.py" && "$out/orthancseg/v1/events_pb2_grpc.py" -nt "$proto" \
      && "$out/orthancseg/v1/events_pb2_grpc.py" -nt "$options" && "$out/orthancseg/v1/events_pb2_grpc.py" -nt "${BASH_SOURCE[0]}" ]]; then
  echo "generate.sh: $out is up to date"
  exit 0
fi

# Generate into a fresh directory and point the "generated" symlink at it with one rename, so an
# Orthanc starting meanwhile imports either the old modules or the new ones, never none or half.
tmp="$(mktemp -d "$here/.generated.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
protoc --proto_path="$protos" \
  --python_out="$tmp" \
  --grpc_python_out="$tmp" \
  --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" \
  "$proto" "$options"
chmod -R a+rX "$tmp"
previous="$(readlink "$out" || true)"
[[ -d "$out" && ! -L "$out" ]] && rm -rf "$out"   # a plain directory left by an older version of this script
ln -sfn "$(basename "$tmp")" "$here/.generated.link"
mv -T "$here/.generated.link" "$out"
trap - EXIT
[[ -n "$previous" && "$previous" != "$(basename "$tmp")" ]] && rm -rf "${here:?}/$previous"
echo "generate.sh: wrote $(cd "$out" && find . -name '*.py' | sort | tr '\n' ' ')"
