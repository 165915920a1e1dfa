#!/usr/bin/env bash
# Installs the Debian packages the stack (and, with `test`, the test suite) needs, only those missing,
# so a second run costs one dpkg-query. Usage: install-deps.sh stack|test
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mode="${1:-stack}"
packages=(orthanc orthanc-python orthanc-dicomweb orthanc-postgresql orthanc-gdcm postgresql
          python3-grpcio python3-protobuf protobuf-compiler protobuf-compiler-grpc nginx iproute2 ca-certificates
          supervisor acl adminer php8.2-fpm php8.2-pgsql)
# The well-known .proto files (google/protobuf/descriptor.proto) that plugin-bridge/generate.sh compiles options.proto against.
packages+=(libprotobuf-dev)
case "$mode" in
    stack) ;;
    # What the test suites use to make and check images: pydicom, nibabel, dcm2niix, orthanc-neuro; systemd for
    # systemd-analyze, which checks the generated units.
    test) packages+=(chromium python3-pydicom python3-numpy python3-pytest python3-nibabel dcmtk dcm2niix orthanc-neuro systemd) ;;
    *) die "usage: install-deps.sh stack|test" ;;
esac

missing=()
for package in "${packages[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)"
    [[ "$status" == "installed" ]] || missing+=("$package")
done
# Node may come from NodeSource (its nodejs bundles npm) rather than Debian: ask the commands, not dpkg.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v curl >/dev/null 2>&1 || missing+=(curl)

if ((${#missing[@]} > 0)); then
    step "installing missing Debian packages: ${missing[*]}"
    command -v apt-get >/dev/null 2>&1 \
        || die "apt-get is not available, so these packages cannot be installed: ${missing[*]}. Fix: install them with your package manager (the stack targets Debian 12), then rerun."
    sudo=()
    if ! is_root; then
        command -v sudo >/dev/null 2>&1 || die "installing ${missing[*]} needs root. Fix: run as root, or install sudo, or install the packages yourself."
        sudo=(sudo)
    fi
    had_orthanc_service=false
    [[ " ${missing[*]} " == *" orthanc "* ]] && had_orthanc_service=true
    "${sudo[@]}" apt-get update -qq \
        || die "apt-get update failed (no network, or a broken /etc/apt/sources.list). Fix: repair apt, or install these yourself: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        || die "apt-get install failed for: ${missing[*]}. Fix: read apt's message above; the stack targets Debian 12 (bookworm)."
    # Debian starts its own Orthanc on 8042/4242 on install (and php8.2-fpm's pool): the stack runs private ones instead.
    if $had_orthanc_service && [[ -d /run/systemd/system ]]; then
        "${sudo[@]}" systemctl disable --now orthanc >/dev/null 2>&1 || true
        warn "disabled Debian's orthanc.service: the stack runs its own Orthanc (see docs/operations.md)"
    fi
fi

command -v dotnet >/dev/null 2>&1 \
    || die "the .NET SDK is missing (dotnet not on PATH). Fix: install the .NET 10 SDK (https://learn.microsoft.com/dotnet/core/install/linux-debian), then rerun."
dotnet --list-sdks 2>/dev/null | grep -q '^10\.' \
    || die "the .NET 10 SDK is missing (dotnet --list-sdks shows none). Fix: install the .NET 10 SDK, then rerun."
exit 0
