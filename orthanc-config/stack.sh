#!/usr/bin/env bash
# Starts, stops and reports the local OrthancSeg stack: PostgreSQL, Orthanc, the worker and OHIF
# behind nginx, all private to this checkout (state under .stack/), all on loopback by default.
# Usage: stack.sh up|down|status        (the Makefile's `make up`, `make down`, `make status`)
set -euo pipefail
umask 022
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_DIR="$STACK/pg"
PG_DATA="$PG_DIR/data"
ORTHANC_DIR="$STACK/orthanc"
NGINX_DIR="$STACK/nginx"
APP_DIR="$STACK/app"

external_pg() { [[ -n "${ORTHANCSEG_PG_URL:-}" ]]; }

# ---------------------------------------------------------------------------------------------
# Layout and secrets

prepare_layout() {
    mkdir -p "$STACK" "$LOGS" "$RUN" "$ORTHANC_DIR/storage" "$NGINX_DIR" "$APP_DIR" "$STACK/bin"
    mkdir -p -m 700 "$SECRETS"
    chmod 700 "$SECRETS"
    local name
    for name in orthanc-password pg-orthanc-password pg-worker-password admin-token bridge-token; do
        ensure_secret "$name"
    done
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL

# Host, port and extra libpq parameters of the server the stack uses, as "host port query".
pg_endpoint() {
    if external_pg; then
        /usr/bin/python3 - "$ORTHANCSEG_PG_URL" <<'PY'
import sys, urllib.parse
url = urllib.parse.urlsplit(sys.argv[1])
if url.scheme not in ("postgres", "postgresql") or not url.hostname:
    sys.exit("ORTHANCSEG_PG_URL must look like postgresql://admin:password@host:5432/postgres")
print(url.hostname, url.port or 5432, url.query or "-")
PY
    else
        echo "127.0.0.1 $PG_PORT -"
    fi
}

pg_admin_sql() {
    if external_pg; then
        "$(pg_bin)/psql" "$ORTHANCSEG_PG_URL" -v ON_ERROR_STOP=1 -qAt -f -
    else
        as_pg "$(pg_bin)/psql" -h "$PG_DIR" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt -f -
    fi
}

pg_running() {
    external_pg && return 0
    [[ -f "$PG_DATA/PG_VERSION" ]] && as_pg "$(pg_bin)/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

pg_ready() {
    local host port query
    read -r host port query < <(pg_endpoint)
    "$(pg_bin)/pg_isready" -q -h "$host" -p "$port" -t 2
}

# PostgreSQL runs as 'postgres' when we are root, and must reach its data directory. If this
# checkout sits somewhere that user cannot enter, the data goes under /var/lib and .stack/pg links there.
place_pg_dir() {
    [[ -e "$PG_DIR" ]] && return 0
    if is_root && ! runuser -u postgres -- test -x "$STACK"; then
        local outside
        outside="/var/lib/orthancseg/pg-$(printf '%s' "$STACK" | sha1sum | cut -c1-12)"
        mkdir -p "$outside"
        chown postgres:postgres "$outside"
        ln -s "$outside" "$PG_DIR"
        warn "user postgres cannot enter $STACK, so PostgreSQL's data lives in $outside (linked from $PG_DIR)"
    else
        mkdir -p "$PG_DIR"
    fi
}

pg_up() {
    if external_pg; then
        step "PostgreSQL: using the existing server named by ORTHANCSEG_PG_URL"
        pg_ready || die "the PostgreSQL server in ORTHANCSEG_PG_URL does not answer (pg_isready). Fix: check the URL, the server and its pg_hba.conf."
    elif pg_running; then
        ok "PostgreSQL already running on 127.0.0.1:$PG_PORT"
    else
        step "PostgreSQL: private cluster on 127.0.0.1:$PG_PORT"
        place_pg_dir
        is_root && chown postgres:postgres "$PG_DIR" && chmod 700 "$PG_DIR"
        if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
            as_pg "$(pg_bin)/initdb" -D "$PG_DATA" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
                -E UTF8 --locale=C >"$LOGS/postgres-initdb.log" 2>&1 \
                || fail_part "PostgreSQL (initdb)" "$LOGS/postgres-initdb.log" "initdb failed"
        fi
        require_free_port "$PG_PORT" "PostgreSQL" ORTHANCSEG_PG_PORT
        touch "$LOGS/postgres.log"
        is_root && chown postgres:postgres "$LOGS/postgres.log"
        as_pg "$(pg_bin)/pg_ctl" -D "$PG_DATA" -l "$LOGS/postgres.log" -w -t 60 start \
            -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $PG_DIR" >/dev/null 2>&1 \
            || fail_part "PostgreSQL" "$LOGS/postgres.log" "pg_ctl start failed. Fix: read the log; a stale $PG_DATA/postmaster.pid or a full disk are the usual causes"
    fi
    wait_for 30 "" pg_ready || fail_part "PostgreSQL" "$LOGS/postgres.log" "pg_isready did not answer within 30 s"
    pg_provision
    ok "PostgreSQL ready; databases $PG_ORTHANC_DB and $PG_WORKER_DB"
}

# Two databases with their own roles, so neither service can read the other's data. Idempotent:
# passwords are (re)set from .stack/secrets on every start.
pg_provision() {
    local orthanc_pw worker_pw
    orthanc_pw="$(secret pg-orthanc-password)"
    worker_pw="$(secret pg-worker-password)"
    pg_admin_sql >/dev/null <<SQL || die "could not create the roles and databases (see psql's message above). Fix: with ORTHANCSEG_PG_URL, the URL's user needs CREATEROLE and CREATEDB."
SELECT format('CREATE ROLE %I LOGIN', r) FROM unnest(ARRAY['$PG_ORTHANC_ROLE', '$PG_WORKER_ROLE']) AS r
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) \gexec
ALTER ROLE $PG_ORTHANC_ROLE LOGIN PASSWORD '$orthanc_pw';
ALTER ROLE $PG_WORKER_ROLE LOGIN PASSWORD '$worker_pw';
SELECT format('CREATE DATABASE %I OWNER %I ENCODING ''UTF8'' TEMPLATE template0', d, o)
  FROM (VALUES ('$PG_ORTHANC_DB', '$PG_ORTHANC_ROLE'), ('$PG_WORKER_DB', '$PG_WORKER_ROLE')) AS v(d, o)
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = d) \gexec
REVOKE CONNECT, TEMPORARY ON DATABASE $PG_ORTHANC_DB FROM PUBLIC;
REVOKE CONNECT, TEMPORARY ON DATABASE $PG_WORKER_DB FROM PUBLIC;
SQL
}

pg_down() {
    external_pg && { ok "PostgreSQL is external (ORTHANCSEG_PG_URL): left running"; return 0; }
    if pg_running; then
        as_pg "$(pg_bin)/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null
        ok "PostgreSQL stopped"
    fi
}

# ---------------------------------------------------------------------------------------------
# Orthanc

orthanc_curl() {
    # Credentials go through curl's stdin, not its command line (visible in ps).
    curl -sf --max-time 5 -K - "$@" <<<"user = \"$ORTHANC_USER:$(secret orthanc-password)\""
}

orthanc_healthy() { orthanc_curl "http://127.0.0.1:$ORTHANC_HTTP_PORT/system" >/dev/null; }

orthanc_up() {
    if pid_alive "$RUN/orthanc.pid"; then
        orthanc_healthy || fail_part "Orthanc" "$LOGS/orthanc.log" "it runs (pid $(cat "$RUN/orthanc.pid")) but /system does not answer"
        ok "Orthanc already running on http://127.0.0.1:$ORTHANC_HTTP_PORT/"
        return 0
    fi
    step "Orthanc: HTTP $ORTHANC_HTTP_PORT, DICOM $ORTHANC_DICOM_PORT, PostgreSQL index, DICOMweb, GDCM, Python bridge"
    [[ -f "$BRIDGE_SCRIPT" ]] \
        || die "the Orthanc bridge script $BRIDGE_SCRIPT is missing, so Orthanc could not forward events to the worker. Fix: use a checkout that contains plugin-bridge/ (git status, git log -- plugin-bridge)."
    if [[ -x "$ORTHANCSEG_REPO/plugin-bridge/generate.sh" ]]; then
        "$ORTHANCSEG_REPO/plugin-bridge/generate.sh" >"$LOGS/bridge-generate.log" 2>&1 \
            || fail_part "the bridge's protobuf modules" "$LOGS/bridge-generate.log" "plugin-bridge/generate.sh failed"
    fi
    require_free_port "$ORTHANC_HTTP_PORT" "Orthanc (HTTP)" ORTHANCSEG_ORTHANC_HTTP_PORT
    require_free_port "$ORTHANC_DICOM_PORT" "Orthanc (DICOM)" ORTHANCSEG_ORTHANC_DICOM_PORT
    local host port query uri
    read -r host port query < <(pg_endpoint)
    uri="postgresql://$PG_ORTHANC_ROLE:$(secret pg-orthanc-password)@$host:$port/$PG_ORTHANC_DB"
    [[ "$query" != "-" ]] && uri="$uri?$query"
    "$ORTHANCSEG_CONFIG_DIR/render-orthanc-config.sh" "$ORTHANC_DIR/orthanc.json" \
        HTTP_PORT="$ORTHANC_HTTP_PORT" DICOM_PORT="$ORTHANC_DICOM_PORT" DICOM_AET="$ORTHANC_AET" \
        STORAGE_DIR="$ORTHANC_DIR/storage" HTTP_USER="$ORTHANC_USER" HTTP_PASSWORD="$(secret orthanc-password)" \
        STABLE_AGE="$STABLE_AGE" PYTHON_SCRIPT="$BRIDGE_SCRIPT" PG_URI="$uri" \
        WORKER_PORT="$WORKER_PORT" BRIDGE_TOKEN_FILE="$SECRETS/bridge-token"
    : >"$LOGS/orthanc.log"
    start_detached "$RUN/orthanc.pid" "$LOGS/orthanc.log" /usr/sbin/Orthanc "$ORTHANC_DIR/orthanc.json"
    await_started "Orthanc" "$LOGS/orthanc.log" "$RUN/orthanc.pid" 120 orthanc_healthy \
        "Orthanc ready on http://127.0.0.1:$ORTHANC_HTTP_PORT/" "/system did not answer within 120 s"
}

orthanc_down() { stop_pid "$RUN/orthanc.pid" "Orthanc" 60; }

# ---------------------------------------------------------------------------------------------
# Worker and CLI

worker_healthy() { /usr/bin/python3 "$ORTHANCSEG_CONFIG_DIR/grpc-health.py" "127.0.0.1:$WORKER_PORT" "" 2; }

publish() {
    local project="$1" out="$2" log="$3" no_build=()
    # ORTHANCSEG_NO_BUILD=1: copy what `make build` already built (CI, the tests), never rebuild in place.
    [[ "${ORTHANCSEG_NO_BUILD:-}" == 1 ]] && no_build=(--no-build)
    dotnet publish "$ORTHANCSEG_REPO/$project" -c Release -o "$out" --nologo -v quiet "${no_build[@]}" >"$log" 2>&1 \
        || fail_part "the build of $project" "$log" "dotnet publish failed"
}

worker_up() {
    if pid_alive "$RUN/worker.pid"; then
        worker_healthy || fail_part "the worker" "$LOGS/worker.log" "it runs (pid $(cat "$RUN/worker.pid")) but its gRPC health check fails"
        ok "worker already running on http://127.0.0.1:$WORKER_PORT"
        return 0
    fi
    step "worker: building and starting orthancseg-worker on 127.0.0.1:$WORKER_PORT"
    require_free_port "$WORKER_PORT" "the worker (gRPC)" ORTHANCSEG_WORKER_PORT
    publish worker/OrthancSeg.Worker "$APP_DIR/worker" "$LOGS/worker-build.log"
    # The CLI speaks the worker's contract: rebuild it with the worker it talks to.
    cli_install force
    local host port query
    read -r host port query < <(pg_endpoint)
    # The password stays in a pgpass file (mode 600), not in the environment or a command line.
    (umask 077 && printf '%s:%s:%s:%s:%s\n' "$host" "$port" "$PG_WORKER_DB" "$PG_WORKER_ROLE" "$(secret pg-worker-password)" >"$SECRETS/worker.pgpass")
    local ssl=""
    [[ "$query" == *sslmode=require* || "$query" == *sslmode=verify* ]] && ssl=";SSL Mode=Require"
    : >"$LOGS/worker.log"
    (
        cd "$APP_DIR/worker"
        export DOTNET_ENVIRONMENT=Production ASPNETCORE_ENVIRONMENT=Production
        export OrthancSeg__Database__ConnectionString="Host=$host;Port=$port;Database=$PG_WORKER_DB;Username=$PG_WORKER_ROLE;Passfile=$SECRETS/worker.pgpass$ssl"
        export OrthancSeg__Orthanc__Url="http://127.0.0.1:$ORTHANC_HTTP_PORT"
        export OrthancSeg__Orthanc__Username="$ORTHANC_USER"
        export OrthancSeg__Orthanc__PasswordFile="$SECRETS/orthanc-password"
        export OrthancSeg__Auth__BridgeTokenFile="$SECRETS/bridge-token"
        export OrthancSeg__Auth__AdminTokenFile="$SECRETS/admin-token"
        # nnU-Net datasets (snapshots) go to $nnUNet_raw/DatasetNNN_Name; ORTHANCSEG_NNUNET_RAW points them elsewhere.
        export OrthancSeg__Datasets__RawRoot="${ORTHANCSEG_NNUNET_RAW:-$STACK/data/nnUNet_raw}"
        export Kestrel__Endpoints__Grpc__Url="http://127.0.0.1:$WORKER_PORT"
        export Kestrel__Endpoints__Grpc__Protocols=Http2
        start_detached "$RUN/worker.pid" "$LOGS/worker.log" dotnet "$APP_DIR/worker/orthancseg-worker.dll"
    )
    await_started "the worker" "$LOGS/worker.log" "$RUN/worker.pid" 90 worker_healthy \
        "worker ready (gRPC health SERVING) on http://127.0.0.1:$WORKER_PORT" "its gRPC health check did not pass within 90 s"
}

worker_down() { stop_pid "$RUN/worker.pid" "worker" 30; }

cli_install() {
    if [[ -x "$STACK/bin/orthancseg" && -f "$APP_DIR/cli/orthancseg.dll" && "${1:-}" != force ]]; then
        return 0
    fi
    publish worker/OrthancSeg.Cli "$APP_DIR/cli" "$LOGS/cli-build.log"
    cat >"$STACK/bin/orthancseg" <<EOF
#!/bin/sh
# OrthancSeg admin CLI for the stack in $STACK: finds the worker and the admin token by itself.
export ORTHANCSEG_URL="\${ORTHANCSEG_URL:-http://127.0.0.1:$WORKER_PORT}"
export ORTHANCSEG_TOKEN_FILE="\${ORTHANCSEG_TOKEN_FILE:-$SECRETS/admin-token}"
exec dotnet "$APP_DIR/cli/orthancseg.dll" "\$@"
EOF
    chmod 755 "$STACK/bin/orthancseg"
    ok "CLI installed as $STACK/bin/orthancseg"
}

# ---------------------------------------------------------------------------------------------
# OHIF behind nginx

ohif_healthy() {
    curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$OHIF_PORT/" \
        && curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$OHIF_PORT/dicom-web/studies?limit=1"
}

ohif_up() {
    if pid_alive "$RUN/nginx.pid"; then
        ohif_healthy || fail_part "OHIF (nginx)" "$LOGS/nginx-error.log" "nginx runs but the viewer or its /dicom-web/ proxy does not answer 200"
        ok "OHIF already served on http://127.0.0.1:$OHIF_PORT/"
        return 0
    fi
    step "OHIF $OHIF_VERSION: nginx on 127.0.0.1:$OHIF_PORT, /dicom-web/ proxied to Orthanc"
    "$ORTHANCSEG_CONFIG_DIR/install-ohif.sh"
    require_free_port "$OHIF_PORT" "OHIF (nginx)" ORTHANCSEG_OHIF_PORT
    "$ORTHANCSEG_CONFIG_DIR/render-nginx-config.sh" "$NGINX_DIR/nginx.conf" \
        LISTEN="127.0.0.1:$OHIF_PORT" OHIF_ROOT="$STACK/ohif/dist" ORTHANC_URL="http://127.0.0.1:$ORTHANC_HTTP_PORT" \
        ORTHANC_USER="$ORTHANC_USER" ORTHANC_PASSWORD_FILE="$SECRETS/orthanc-password" \
        PID_FILE="$RUN/nginx.pid" LOG_DIR="$LOGS" TEMP_DIR="$NGINX_DIR/tmp"
    touch "$LOGS/nginx-error.log"
    nginx -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" -e "$LOGS/nginx-error.log" >>"$LOGS/nginx-error.log" 2>&1 \
        || fail_part "OHIF (nginx)" "$LOGS/nginx-error.log" "nginx refused to start"
    local rc=0
    wait_for 30 "" ohif_healthy || rc=$?
    ((rc == 0)) || fail_part "OHIF (nginx)" "$LOGS/nginx-error.log" "http://127.0.0.1:$OHIF_PORT/ or its /dicom-web/ proxy did not answer 200 within 30 s"
    ok "OHIF ready on http://127.0.0.1:$OHIF_PORT/"
}

ohif_down() {
    if pid_alive "$RUN/nginx.pid"; then
        local pid
        pid="$(cat "$RUN/nginx.pid")"
        kill -QUIT "$pid" 2>/dev/null || true
        local i
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
        ok "nginx (OHIF) stopped"
    fi
    rm -f "$RUN/nginx.pid"
}

# ---------------------------------------------------------------------------------------------

print_summary() {
    local rel="${STACK#"$PWD"/}" host port query
    read -r host port query < <(pg_endpoint)
    cat <<EOF

${_bold}OrthancSeg is up.${_reset}
  OHIF viewer     http://127.0.0.1:$OHIF_PORT/
  Orthanc REST    http://127.0.0.1:$ORTHANC_HTTP_PORT/   user $ORTHANC_USER, password in $rel/secrets/orthanc-password
  Orthanc DICOM   port $ORTHANC_DICOM_PORT, AE title $ORTHANC_AET
  Worker gRPC     http://127.0.0.1:$WORKER_PORT   admin token in $rel/secrets/admin-token
  PostgreSQL      $host:$port   databases $PG_ORTHANC_DB, $PG_WORKER_DB; passwords in $rel/secrets/
  CLI             $rel/bin/orthancseg --help
  Logs            $rel/logs/
Upload:  curl -u $ORTHANC_USER:\$(cat $rel/secrets/orthanc-password) -X POST --data-binary @slice.dcm http://127.0.0.1:$ORTHANC_HTTP_PORT/instances
Stop:    make down
EOF
}

cmd_up() {
    "$ORTHANCSEG_CONFIG_DIR/install-deps.sh" stack
    prepare_layout
    pg_up
    orthanc_up
    worker_up
    cli_install
    ohif_up
    print_summary
}

cmd_down() {
    step "stopping the OrthancSeg stack"
    ohif_down
    worker_down
    orthanc_down
    if [[ -d "$PG_DIR" ]] || external_pg; then
        pg_down
    fi
    ok "stack stopped"
}

status_line() {
    local name="$1" state="$2" detail="$3" colour="$_red"
    [[ "$state" == running* ]] && colour="$_green"
    printf '  %-12s %s%-22s%s %s\n' "$name" "$colour" "$state" "$_reset" "$detail"
}

cmd_status() {
    local down=0 state
    say "OrthancSeg stack in $STACK"
    if external_pg; then
        if pg_ready; then state="running (external)"; else state="unreachable"; down=1; fi
        status_line PostgreSQL "$state" "ORTHANCSEG_PG_URL"
    elif [[ -f "$PG_DATA/PG_VERSION" ]] && pg_running; then
        if pg_ready; then state="running"; else state="running, not ready"; down=1; fi
        status_line PostgreSQL "$state" "127.0.0.1:$PG_PORT  log $LOGS/postgres.log"
    else
        status_line PostgreSQL stopped ""; down=1
    fi
    if pid_alive "$RUN/orthanc.pid"; then
        if orthanc_healthy; then state="running"; else state="running, not answering"; down=1; fi
        status_line Orthanc "$state" "pid $(cat "$RUN/orthanc.pid")  http://127.0.0.1:$ORTHANC_HTTP_PORT/  DICOM $ORTHANC_DICOM_PORT"
    else
        status_line Orthanc stopped ""; down=1
    fi
    if pid_alive "$RUN/worker.pid"; then
        if worker_healthy 2>/dev/null; then state="running"; else state="running, not healthy"; down=1; fi
        status_line Worker "$state" "pid $(cat "$RUN/worker.pid")  http://127.0.0.1:$WORKER_PORT (gRPC)"
    else
        status_line Worker stopped ""; down=1
    fi
    if pid_alive "$RUN/nginx.pid"; then
        if ohif_healthy; then state="running"; else state="running, not answering"; down=1; fi
        status_line OHIF "$state" "pid $(cat "$RUN/nginx.pid")  http://127.0.0.1:$OHIF_PORT/"
    else
        status_line OHIF stopped ""; down=1
    fi
    return $down
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
