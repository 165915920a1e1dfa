#!/usr/bin/env bash
# Installs the prebuilt OHIF viewer (@ohif/app's dist/) under .stack/ohif/dist, once per version,
# and (re)writes its app-config.js from orthanc-config/app-config.js. `npm pack` fetches only the
# tarball: `npm install` would pull 39 build dependencies the prebuilt dist does not need.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ohif="$STACK/ohif"
dist="$ohif/dist"
mkdir -p "$STACK" "$STACK/cache"
# Users other than root serve these files (nginx's workers): from a private checkout or a state folder closed to others
# (make up's), the viewer lives under /var/lib/orthancseg.
place_reachable "$ohif" nobody "the OHIF viewer"
command -v npm >/dev/null 2>&1 || die "npm is missing. Fix: apt-get install nodejs npm (make up / make test do it)."
command -v node >/dev/null 2>&1 || die "node is missing. Fix: apt-get install nodejs."

if [[ "$(cat "$ohif/VERSION" 2>/dev/null)" != "$OHIF_VERSION" || ! -f "$dist/index.html" ]]; then
    tarball="$STACK/cache/ohif-app-$OHIF_VERSION.tgz"
    if [[ ! -s "$tarball" ]]; then
        step "downloading the OHIF viewer @ohif/app@$OHIF_VERSION from npm (about 50 MB, once)"
        # npm's own cache first: a machine without internet access (or one that already fetched it) is not kept
        # waiting for npm's retries.
        if ! out="$(cd "$STACK/cache" && npm pack "@ohif/app@$OHIF_VERSION" --silent --prefer-offline 2>&1)"; then
            printf '%s\n' "$out" | tail -n 5 >&2
            die "npm could not fetch @ohif/app@$OHIF_VERSION from $(npm config get registry 2>/dev/null). Fix: check the network and npm's registry setting, or pick a published version with ORTHANCSEG_OHIF_VERSION (npm view @ohif/app versions)."
        fi
    fi
    unpack="$(mktemp -d "$ohif/unpack.XXXXXX")"
    tar -xzf "$tarball" -C "$unpack" package/dist \
        || { rm -rf "$unpack"; die "$tarball has no package/dist: not a prebuilt @ohif/app. Fix: delete it and rerun."; }
    rm -rf "$dist"
    mv "$unpack/package/dist" "$dist"
    rm -rf "$unpack"
    echo "$OHIF_VERSION" >"$ohif/VERSION"
fi
# As root the viewer is served by users other than root (the stack's nginx as orthancseg, the tests' as nobody); it holds
# no data, and outside a state folder that others cannot enter (place_reachable above) it is readable by all.
is_root && chmod -R a+rX "$ohif/"

install -m 644 "$ORTHANCSEG_CONFIG_DIR/app-config.js" "$dist/app-config.js"
# A syntax error in app-config.js shows in the browser as a black page: catch it here instead.
node -e "require('vm').runInNewContext(require('fs').readFileSync(process.argv[1], 'utf8'), { window: {} })" "$dist/app-config.js" \
    || die "$dist/app-config.js does not parse. Fix: correct orthanc-config/app-config.js."
