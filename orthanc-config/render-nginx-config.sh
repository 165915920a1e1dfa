#!/usr/bin/env bash
# Renders nginx.conf.template into a complete nginx.conf for OHIF + the DICOMweb proxy. Used by the
# stack and by the integration tests' throwaway nginx alike.
#
# Usage: render-nginx-config.sh OUTPUT KEY=VALUE...
# Keys: LISTEN (e.g. 127.0.0.1:3000) OHIF_ROOT ORTHANC_URL (http://127.0.0.1:8042) ORTHANC_USER
#       ORTHANC_PASSWORD_FILE PID_FILE LOG_DIR TEMP_DIR, and optionally SERVER_NAMES: further host names (name or
#       name:port) that browsers use to reach this nginx, separated by blanks or commas.
#       TEMP_DIR is created here. Requests whose Host header names none of them, 127.0.0.1 or localhost are 421.
#       Optionally RUN_AS: the unprivileged user that starts nginx (the stack's supervisord does, as root); without it
#       nginx is started by the caller, and as root drops its workers to nobody. INCLUDE: a file of further server
#       blocks (the stack's Adminer).
set -euo pipefail
dir="$(dirname "${BASH_SOURCE[0]}")"
[[ $# -ge 1 ]] || { echo "usage: $0 OUTPUT KEY=VALUE..." >&2; exit 2; }
output="$1"; shift
declare -A v=()
for pair in "$@"; do
    [[ "$pair" == *=* ]] || { echo "render-nginx-config: argument '$pair' is not KEY=VALUE" >&2; exit 2; }
    v["${pair%%=*}"]="${pair#*=}"
done
forbidden=$'[;{}"|&\n]'
for key in LISTEN OHIF_ROOT ORTHANC_URL ORTHANC_USER ORTHANC_PASSWORD_FILE PID_FILE LOG_DIR TEMP_DIR; do
    [[ -n "${v[$key]:-}" ]] || { echo "render-nginx-config: no value given for $key" >&2; exit 2; }
    [[ ! "${v[$key]}" =~ $forbidden ]] || { echo "render-nginx-config: $key contains a character nginx or this script would misread: ${v[$key]}" >&2; exit 2; }
done
names_allowed='^[A-Za-z0-9.:, -]*$'
[[ "${v[SERVER_NAMES]:-}" =~ $names_allowed ]] || { echo "render-nginx-config: SERVER_NAMES may hold host names, IPv4 addresses and ports only: ${v[SERVER_NAMES]}" >&2; exit 2; }
[[ "${v[LISTEN]}" =~ :([0-9]+)$ ]] || { echo "render-nginx-config: LISTEN must end in :port, got ${v[LISTEN]}" >&2; exit 2; }
port="${BASH_REMATCH[1]}"
# The Host values a browser sends for this server: 127.0.0.1 and localhost with the port; a name of SERVER_NAMES as
# given, and when given without a port both bare (a site proxy on 443 or 80 in front) and with this port.
host_entries="        \"127.0.0.1:$port\" 1;\n        \"localhost:$port\" 1;\n"
for name in ${v[SERVER_NAMES]:+${v[SERVER_NAMES]//,/ }}; do
    name="${name,,}"
    host_entries+="        \"$name\" 1;\n"
    if [[ ! "$name" =~ :[0-9]+$ ]]; then
        host_entries+="        \"$name:$port\" 1;\n"
    fi
done
[[ -r "${v[ORTHANC_PASSWORD_FILE]}" ]] || { echo "render-nginx-config: cannot read ${v[ORTHANC_PASSWORD_FILE]}" >&2; exit 2; }
basic="$(printf '%s:%s' "${v[ORTHANC_USER]}" "$(cat "${v[ORTHANC_PASSWORD_FILE]}")" | base64 -w0)"

mkdir -p "${v[TEMP_DIR]}"
# nginx is given the folders themselves, not links to them: a link's path may cross a folder its workers
# cannot enter (a checkout under /root, see place_reachable in lib.sh).
v[TEMP_DIR]="$(readlink -f "${v[TEMP_DIR]}")"
v[OHIF_ROOT]="$(readlink -f "${v[OHIF_ROOT]}")"
include_line=""
if [[ -n "${v[INCLUDE]:-}" ]]; then
    [[ ! "${v[INCLUDE]}" =~ $forbidden && -r "${v[INCLUDE]}" ]] || { echo "render-nginx-config: cannot include ${v[INCLUDE]}" >&2; exit 2; }
    include_line="include ${v[INCLUDE]};"
fi
user_line="" runner=""
if [[ -n "${v[RUN_AS]:-}" ]]; then
    # Started as this user: a master that is not root has no user to switch to.
    runner="${v[RUN_AS]}"
elif [[ "$(id -u)" == 0 ]]; then
    # nginx's workers drop root; they must be able to write request bodies (STOW) to the temp dir.
    user_line="user nobody nogroup;"
    runner=nobody
fi
if [[ "$(id -u)" == 0 && -n "$runner" ]]; then
    chown "$runner:$(id -gn "$runner")" "${v[TEMP_DIR]}"
    # Without this check a viewer nginx cannot read is a 500 for every page, with the reason only in nginx's log.
    if ! runuser -u "$runner" -- test -r "${v[OHIF_ROOT]}/index.html" 2>/dev/null; then
        echo "render-nginx-config: nginx's workers (user $runner) cannot read ${v[OHIF_ROOT]}/index.html: a folder on the way is private. Fix: give nginx a copy in a folder that user $runner can reach (install-ohif.sh keeps the viewer under /var/lib/orthancseg when the state folder is private)." >&2
        exit 1
    fi
    if ! runuser -u "$runner" -- test -w "${v[TEMP_DIR]}" 2>/dev/null; then
        echo "render-nginx-config: nginx's workers (user $runner) cannot write to ${v[TEMP_DIR]}: a folder on the way is private. Fix: a TEMP_DIR outside it." >&2
        exit 1
    fi
fi

# The credential is put in by bash itself, never on a command line (ps shows those to every local user).
rendered="$(sed -e "s|{{USER_LINE}}|$user_line|" \
    -e "s|{{LISTEN}}|${v[LISTEN]}|" \
    -e "s|{{OHIF_ROOT}}|${v[OHIF_ROOT]}|" \
    -e "s|{{ORTHANC_URL}}|${v[ORTHANC_URL]}|g" \
    -e "s|{{PID_FILE}}|${v[PID_FILE]}|" \
    -e "s|{{LOG_DIR}}|${v[LOG_DIR]}|g" \
    -e "s|{{TEMP_DIR}}|${v[TEMP_DIR]}|g" \
    -e "s|{{HOST_ENTRIES}}|${host_entries%\\n}|" \
    -e "s|{{INCLUDE_LINE}}|$include_line|" \
    "$dir/nginx.conf.template")"
(umask 077 && printf '%s\n' "${rendered//"{{ORTHANC_BASIC}}"/"$basic"}" >"$output.tmp")
if grep -q '{{' "$output.tmp"; then
    echo "render-nginx-config: unrendered placeholder left in $output" >&2; exit 1
fi
# The Authorization header inside is a credential: for the owner, and the group of the user that starts nginx.
chmod 600 "$output.tmp"
if [[ "$(id -u)" == 0 && -n "${v[RUN_AS]:-}" ]]; then
    chgrp "$(id -gn "${v[RUN_AS]}")" "$output.tmp"
    chmod 640 "$output.tmp"
fi
mv "$output.tmp" "$output"
