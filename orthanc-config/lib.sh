# Shared settings and helpers for the stack scripts. Sourced, never run.
# Every knob is an ORTHANCSEG_* environment variable with a default; docs/operations.md lists them.

ORTHANCSEG_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ORTHANCSEG_CONFIG_DIR="$ORTHANCSEG_REPO/orthanc-config"
STACK="${ORTHANCSEG_STACK_DIR:-$ORTHANCSEG_REPO/.stack}"
# A state folder kept under /var/lib/orthancseg (stack.sh's place_state) is a link: every part is given its real path,
# never one through a private folder it cannot enter.
[[ -L "$STACK" ]] && STACK="$(readlink -f "$STACK")"

# The ports `make up` used (written by it), so `make status` and `make down` find the stack without the variables set again;
# a variable set by the caller still wins.
if [[ -f "$STACK/ports.env" ]]; then
    while IFS='=' read -r key value; do
        if [[ "$key" =~ ^ORTHANCSEG_[A-Z_]+_PORT$ && -z "${!key:-}" ]]; then
            export "$key=$value"
        fi
    done < "$STACK/ports.env"
fi

PG_PORT="${ORTHANCSEG_PG_PORT:-5433}"
ORTHANC_HTTP_PORT="${ORTHANCSEG_ORTHANC_HTTP_PORT:-8042}"
ORTHANC_DICOM_PORT="${ORTHANCSEG_ORTHANC_DICOM_PORT:-4242}"
ORTHANC_AET="${ORTHANCSEG_ORTHANC_AET:-ORTHANCSEG}"
OHIF_PORT="${ORTHANCSEG_OHIF_PORT:-3000}"
WORKER_PORT="${ORTHANCSEG_WORKER_PORT:-50051}"
# Adminer, the database GUI (nginx + php-fpm), on loopback only.
ADMINER_PORT="${ORTHANCSEG_ADMINER_PORT:-5050}"
# Seconds without a new instance before Orthanc calls a series stable and the bridge forwards it.
# Orthanc's own default (60) makes a demo feel broken; 10 still lets a modality finish a series.
STABLE_AGE="${ORTHANCSEG_STABLE_AGE:-10}"
OHIF_VERSION="${ORTHANCSEG_OHIF_VERSION:-3.13.2}"
# Host names (besides 127.0.0.1 and localhost) under which browsers reach the viewer, e.g. behind a site's TLS proxy;
# nginx refuses any other Host header.
SERVER_NAMES="${ORTHANCSEG_SERVER_NAMES:-}"
ORTHANC_USER="orthancseg"

# Two machines (docs/deployment.md): ROLE all (default: everything here), pacs (PostgreSQL for Orthanc's index, Orthanc
# with the bridge, OHIF) or segmentation (the worker, its PostgreSQL, the datasets); LISTEN is this machine's address on
# the link, PEER the other machine's. `make up` remembers them in the state folder (link.env); given again, they win.
if [[ -f "$STACK/link.env" ]]; then
    while IFS='=' read -r key value; do
        if [[ "$key" =~ ^ORTHANCSEG_(ROLE|PEER|LISTEN)$ && -z "${!key:-}" ]]; then
            export "$key=$value"
        fi
    done < "$STACK/link.env"
fi
ROLE="${ORTHANCSEG_ROLE:-all}"
PEER="${ORTHANCSEG_PEER:-}"
LISTEN="${ORTHANCSEG_LISTEN:-}"
# The PACS server's TLS port for the worker's Orthanc requests (nginx in front of Orthanc's loopback REST API).
LINK_ORTHANC_PORT="${ORTHANCSEG_LINK_ORTHANC_PORT:-8443}"
# The worker's own Orthanc account: read and upload, never delete or configure (the bridge's HTTP filter).
LINK_USER="orthancseg-worker"

PG_ORTHANC_DB="orthanc_index"
PG_ORTHANC_ROLE="orthancseg_orthanc"
PG_WORKER_DB="orthancseg"
PG_WORKER_ROLE="orthancseg_worker"
# People browsing the worker's records (Adminer, pgAdmin, psql): a login role that is a member of a NOLOGIN group role,
# to which migration 0010 grants SELECT on the views of schema browse, and nothing else.
PG_READER_ROLE="orthancseg_reader"
PG_BROWSER_ROLE="orthancseg_browser"

# The secrets make up generates, readable by root (or the user running the stack) only.
SECRETS="$STACK/secrets"
# Copies of the secrets the services read themselves (tokens, Orthanc's password, the worker's pgpass), owned by the
# service user; written from SECRETS by every make up, so a service can never change what root reads.
SERVICE_SECRETS="$STACK/service-secrets"
LOGS="$STACK/logs"
RUN="$STACK/run"

BRIDGE_SCRIPT="$ORTHANCSEG_REPO/plugin-bridge/orthancseg_bridge.py"

if [[ -t 1 ]]; then
    _bold=$'\e[1m'; _red=$'\e[31m'; _green=$'\e[32m'; _yellow=$'\e[33m'; _reset=$'\e[0m'
else
    _bold=""; _red=""; _green=""; _yellow=""; _reset=""
fi

say()  { printf '%s\n' "$*"; }
step() { printf '%s==>%s %s\n' "$_bold" "$_reset" "$*"; }
ok()   { printf '  %sok%s   %s\n' "$_green" "$_reset" "$*"; }
warn() { printf '  %swarn%s %s\n' "$_yellow" "$_reset" "$*" >&2; }
die()  { printf '%serror:%s %s\n' "$_red" "$_reset" "$*" >&2; exit 1; }

is_root() { [[ "$(id -u)" == 0 ]]; }

# The newest installed PostgreSQL server's binaries (initdb, pg_ctl); Debian keeps them off PATH.
pg_bin() {
    local bin
    bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$bin" && -x "$bin/initdb" ]] || die "PostgreSQL server binaries are missing (no /usr/lib/postgresql/*/bin/initdb). Fix: apt-get install postgresql, or set ORTHANCSEG_PG_URL to an existing server."
    printf '%s' "$bin"
}

# PostgreSQL refuses to run as root: as root, its commands run as the 'postgres' system user, from /
# (the caller's folder may be one that user cannot enter, e.g. a checkout under /root).
as_pg() {
    if is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# Who listens on a TCP port (any address), or nothing when the port is free.
port_owner() {
    local port="$1" line
    line="$(ss -Hltnp "sport = :$port" 2>/dev/null)"
    line="${line%%$'\n'*}"
    [[ -n "$line" ]] || return 1
    local users
    users="$(grep -o 'users:(([^)]*))' <<<"$line" | head -n 1)"
    printf '%s' "${users:-an unknown process (run ss -ltnp as root to see it)}"
}

# Fails naming the port, who holds it and the knob that moves it.
require_free_port() {
    local port="$1" what="$2" knob="$3" owner
    if owner="$(port_owner "$port")"; then
        die "port $port, needed by $what, is already in use by $owner. Fix: stop that process, or choose another port with $knob=<port>."
    fi
}

pid_alive() {
    local file="$1" pid
    [[ -f "$file" ]] || return 1
    pid="$(cat "$file" 2>/dev/null)"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# Sends SIGTERM and waits up to $3 seconds, then SIGKILL; removes the pid file. Only for what the stack started
# before it was supervised (see stack.sh's legacy_down); supervisord stops its own programs.
stop_pid() {
    local pidfile="$1" what="$2" timeout="${3:-30}" pid i
    if ! pid_alive "$pidfile"; then
        rm -f "$pidfile"
        return 0
    fi
    pid="$(cat "$pidfile")"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; ok "$what stopped"; return 0; }
        sleep 0.1
    done
    warn "$what (pid $pid) ignored SIGTERM for ${timeout}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    rm -f "$pidfile"
}

# Polls CHECK until it succeeds or the deadline passes; returns 2 early when ALIVE (a command, or "" for none)
# says the part is gone.  Usage: wait_for SECONDS ALIVE CHECK...
wait_for() {
    local timeout="$1" alive="$2"; shift 2
    local deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        if [[ -n "$alive" ]] && ! $alive; then
            return 2
        fi
        sleep 0.5
    done
    return 1
}

log_tail() {
    local log="$1"
    if [[ -f "$log" ]]; then
        printf -- '--- last lines of %s ---\n' "$log" >&2
        tail -n 25 "$log" >&2
        printf -- '---\n' >&2
    fi
}

# Waits for a part supervisord has just started: "ok READY" when CHECK passes, else the part is named with
# the tail of its log: supervisord gave up on it (ALIVE fails), or TIMEOUT_MESSAGE.
# Usage: await_started PART LOG ALIVE SECONDS CHECK READY TIMEOUT_MESSAGE
await_started() {
    local part=$1 log=$2 alive=$3 seconds=$4 check=$5 ready=$6 timeout_message=$7 rc=0
    wait_for "$seconds" "$alive" "$check" || rc=$?
    case $rc in
        0) ok "$ready" ;;
        2) fail_part "$part" "$log" "it kept exiting during start-up and supervisord gave up on it" ;;
        *) fail_part "$part" "$log" "$timeout_message" ;;
    esac
}

# A part that did not come up: name it, show its log, stop.
fail_part() {
    local what="$1" log="$2" why="$3"
    log_tail "$log"
    printf 'The parts that did come up keep running: fix the problem and run make up again (it starts only what is missing), or make down.\n' >&2
    die "$what did not come up: $why (log: $log)"
}

secret() { cat "$SECRETS/$1"; }

# As root, files that another user serves must be reachable by it: the OHIF viewer, which the tests' nginx serves as
# nobody, cannot stay in a checkout under a private folder such as /root (mode 700), nor in the state folder that make
# up closes to others. Then DIR becomes a link to a folder of its own under /var/lib/orthancseg (a real folder moved
# there, if DIR was one), and the user is given the link's target (readlink -f): it never walks through the private
# folder. (make up keeps its whole state folder there the same way, see place_state in stack.sh.)
# Usage: place_reachable DIR USER WHAT
place_reachable() {
    local dir="$1" user="$2" what="$3" outside rel
    [[ -L "$dir" ]] && return 0
    if ! is_root || runuser -u "$user" -- test -x "$(dirname "$dir")" 2>/dev/null; then
        mkdir -p "$dir"
        return 0
    fi
    rel="${dir#"$STACK"/}"
    outside="/var/lib/orthancseg/${rel//\//-}-$(printf '%s' "$STACK" | sha1sum | cut -c1-12)"
    mkdir -p /var/lib/orthancseg "$outside"
    chmod 755 /var/lib/orthancseg
    if [[ -d "$dir" ]]; then
        cp -a "$dir/." "$outside/" && rm -rf "$dir"
    fi
    ln -s "$outside" "$dir"
    warn "user $user cannot enter $(dirname "$dir"): keeping $what in $outside (linked from $dir)"
}

ensure_secret() {
    local name="$1" file="$SECRETS/$1"
    if [[ ! -s "$file" ]]; then
        local value=""
        while ((${#value} < 32)); do
            value+="$(head -c 256 /dev/urandom | LC_ALL=C tr -dc 'A-Za-z0-9')"
        done
        (umask 077 && printf '%s' "${value:0:32}" >"$file")
    fi
    chmod 600 "$file"
}
