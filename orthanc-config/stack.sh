#!/usr/bin/env bash
# Starts, stops and reports the local OrthancSeg stack: PostgreSQL, Orthanc, the worker and OHIF
# behind nginx, all private to this checkout (state under .stack/), all on loopback by default.
# Every part runs under a private supervisord (.stack/supervisor/supervisord.conf, its own socket),
# which restarts a part that dies; stack.sh starts them in order and waits for each health check.
# Usage: stack.sh up|down|status|systemd-units   (`make up`, `make down`, `make status`, `make systemd-units`)
set -euo pipefail
# Nothing the stack writes is readable by other users: logs, stored DICOM files, datasets.
umask 027
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# As root every long-running part drops root: PostgreSQL runs as 'postgres' (it refuses root), everything else as the
# system user 'orthancseg' (created if missing). supervisord alone stays root, to start each part as its user. Run by
# another user, every part runs as that user.
if is_root; then
    SERVICE_USER=orthancseg SERVICE_GROUP=orthancseg PG_USER=postgres
else
    SERVICE_USER="$(id -un)" SERVICE_GROUP="$(id -gn)" PG_USER="$(id -un)"
fi

external_pg() { [[ -n "${ORTHANCSEG_PG_URL:-}" ]]; }

ensure_service_user() {
    is_root || return 0
    getent group "$SERVICE_GROUP" >/dev/null || groupadd --system "$SERVICE_GROUP" \
        || die "could not create the group $SERVICE_GROUP (groupadd failed, see above)"
    if ! getent passwd "$SERVICE_USER" >/dev/null; then
        useradd --system --gid "$SERVICE_GROUP" --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin \
            --comment "OrthancSeg services" "$SERVICE_USER" \
            || die "could not create the system user $SERVICE_USER (useradd failed, see above)"
        ok "created the system user $SERVICE_USER (no login shell) that runs Orthanc, the worker, nginx and php-fpm"
    fi
}

# Can USER walk down to PATH (every folder on the way has x for it)?
reachable_by() { runuser -u "$1" -- test -x "$2" 2>/dev/null; }

# The state folder must be reachable by the service users. When the clone (or ORTHANCSEG_STACK_DIR) sits where they
# cannot enter (a clone under /root, mode 700), the whole state folder lives in /var/lib/orthancseg/stack-<hash> and
# the clone's .stack is a link to it (an existing one is moved there once). Root and the CLI go through the link.
place_state() {
    is_root || return 0
    local link="${ORTHANCSEG_STACK_DIR:-$ORTHANCSEG_REPO/.stack}" parent outside
    [[ -L "$link" ]] && return 0
    parent="$(dirname "$link")"
    if reachable_by "$SERVICE_USER" "$parent" && { external_pg || reachable_by "$PG_USER" "$parent"; }; then
        return 0
    fi
    outside="/var/lib/orthancseg/stack-$(printf '%s' "$link" | sha1sum | cut -c1-12)"
    mkdir -p /var/lib/orthancseg
    chmod 755 /var/lib/orthancseg
    if [[ -d "$link" ]]; then
        [[ -f "$link/run/supervisord.pid" ]] && pid_alive "$link/run/supervisord.pid" \
            && die "the stack in $link runs: make down first, then make up moves its state to $outside"
        mkdir -p "$outside"
        cp -a "$link/." "$outside/" && rm -rf "$link"
    fi
    mkdir -p "$outside"
    ln -s "$outside" "$link"
    STACK="$outside"
    warn "the service users cannot enter $parent: the stack's state lives in $outside (linked from $link)"
}

# Both write the state folder (systemd-units names its users and paths).
if [[ "${1:-}" == up || "${1:-}" == systemd-units || "${1:-}" == link-bundle ]]; then
    [[ "$1" == up ]] && "$ORTHANCSEG_CONFIG_DIR/install-deps.sh" stack
    ensure_service_user
    place_state
    SECRETS="$STACK/secrets" SERVICE_SECRETS="$STACK/service-secrets" LOGS="$STACK/logs" RUN="$STACK/run"
fi

PG_DIR="$STACK/pg"
ORTHANC_DIR="$STACK/orthanc"
NGINX_DIR="$STACK/nginx"
ADMINER_DIR="$STACK/adminer"
APP_DIR="$STACK/app"
SUPERVISOR_DIR="$STACK/supervisor"
SUPERVISOR_CONF="$SUPERVISOR_DIR/supervisord.conf"
SUPERVISOR_SOCK="$RUN/supervisor.sock"
SYSTEMD_DIR="$STACK/systemd"
# What the services write themselves: folders of their own (the rest of the state folder is root's, read-only to them).
WEB_LOGS="$LOGS/web"
WEB_RUN="$RUN/web"
HOME_DIR="$STACK/home"
DATA_DIR="$STACK/data"
# The Orthanc bridge, copied where Orthanc's user can read it (the clone may be private).
BRIDGE_DIR="$APP_DIR/bridge"
# The operator's list of DICOM modalities allowed to store (Orthanc's DicomModalities), created empty by make up.
MODALITIES="$STACK/modalities.json"
# One file per part: how often supervisord restarted it since it started, and the last restart's log line.
COUNTS="$RUN/restarts"
RESTARTS_LOG="$LOGS/restarts.log"
# For a site's own pgAdmin: the read-only connection, imported in one step (docs/operations.md, "Browsing the database").
PGADMIN_SERVERS="$STACK/pgadmin-servers.json"

# PostgreSQL's folder may be a link to /var/lib/orthancseg (made by an older make up): postgres is given the target.
resolve_pg_paths() {
    PG_HOME="$(readlink -m "$PG_DIR")"
    PG_DATA="$PG_HOME/data"
}
resolve_pg_paths

# The supervised parts in start order: supervisord's program names (also in its log and restarts.log).
programs() {
    external_pg || echo postgres
    case "$ROLE" in
        pacs) echo orthanc nginx ;;
        segmentation) echo worker ;;
        *) echo orthanc worker adminer nginx ;;
    esac
}

# The name `make status` shows for a program.
part_name() {
    case "$1" in
        postgres) echo PostgreSQL ;;
        orthanc) echo Orthanc ;;
        worker) echo Worker ;;
        adminer) echo Adminer ;;
        nginx) echo OHIF ;;
    esac
}

# The user a program runs as when root runs the stack.
program_user() {
    case "$1" in
        postgres) echo "$PG_USER" ;;
        *) echo "$SERVICE_USER" ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# Layout and secrets

# Creates the folders and gives them to OWNER (user:group; ignored unless root) with MODE.
# Usage: make_dirs OWNER MODE DIR...
make_dirs() {
    local owner="$1" mode="$2"
    shift 2
    mkdir -p "$@"
    if is_root; then chown "$owner" "$@"; fi
    chmod "$mode" "$@"
}

# Root's files that a service reads (configuration, published binaries): readable by the service group, nobody else.
share_with_service() {
    if is_root; then chgrp -R "$SERVICE_GROUP" "$@"; fi
    chmod -R g+rX,g-w,o-rwx "$@"
}

# Who owns what: the state folder and everything root writes in it (configuration, supervisord's logs, the binaries)
# belong to root, readable by the service group; the services write only in folders of their own, never in one root
# writes into (a service could otherwise point root at another file with a link). Others get nothing.
prepare_layout() {
    local svc="$SERVICE_USER:$SERVICE_GROUP" shared="root:$SERVICE_GROUP" name
    make_dirs "$shared" 0750 "$STACK" "$RUN" "$ORTHANC_DIR" "$NGINX_DIR" "$ADMINER_DIR" "$APP_DIR" "$STACK/bin" "$STACK/cache"
    # setgid: the files supervisord writes there (as root) are readable by the crash-recorder (as the service user).
    make_dirs "$shared" 2750 "$LOGS"
    make_dirs root:root 0700 "$SECRETS" "$SUPERVISOR_DIR"
    make_dirs "$svc" 0700 "$SERVICE_SECRETS" "$HOME_DIR" "$ADMINER_DIR/sessions"
    make_dirs "$svc" 0750 "$WEB_LOGS" "$WEB_RUN" "$COUNTS" "$ORTHANC_DIR/storage" "$NGINX_DIR/tmp" "$DATA_DIR"
    if is_root && ! external_pg; then
        # PostgreSQL's own folder is under the state folder: postgres may pass through it, and no more.
        setfacl -m "u:$PG_USER:--x" "$STACK" \
            || die "could not let $PG_USER pass through $STACK with an ACL (setfacl). Fix: put the state folder on a filesystem with POSIX ACLs (ORTHANCSEG_STACK_DIR)."
    fi
    # A stack made by an older make up (umask 022, everything as root): once, give the services their files and close
    # everything to others. Orthanc's storage may be large, so this is not repeated.
    if [[ "$(cat "$STACK/layout" 2>/dev/null)" != 2 ]]; then
        if is_root; then chown -R "$svc" "$ORTHANC_DIR/storage" "$DATA_DIR"; fi
        find "$STACK" -mindepth 1 ! -type l -perm /o=rwx -exec chmod o-rwx {} + 2>/dev/null || true
        echo 2 >"$STACK/layout"
    fi
    for name in orthanc-password pg-orthanc-password pg-worker-password pg-browser-password admin-token bridge-token viewer-token operator-token; do
        ensure_secret "$name"
    done
    write_orthanc_netrc
    if [[ ! -f "$MODALITIES" ]]; then
        cat >"$MODALITIES" <<'EOF'
// The DICOM modalities (scanners, workstations) allowed to send images to Orthanc's DICOM port, read by make up.
// Each: a name of your choice, then [AE title the scanner calls from, its IP address, its DICOM port].
// A sender not listed here, or calling from another address, is refused (C-ECHO still answers). After editing:
// make down && make up. See docs/operations.md, "Adding a scanner". Example:
//   "CT_ROOM_1": ["CT1", "10.0.0.5", 104]
{
}
EOF
        ok "created $MODALITIES: no modality may store over DICOM until one is declared there"
    fi
    if ! external_pg; then
        [[ -L "$PG_DIR" ]] || mkdir -p "$PG_DIR"
        resolve_pg_paths
    fi
    if [[ -n "${ORTHANCSEG_NNUNET_RAW:-}" ]] && is_root; then
        mkdir -p "$ORTHANCSEG_NNUNET_RAW"
        runuser -u "$SERVICE_USER" -- test -w "$ORTHANCSEG_NNUNET_RAW" 2>/dev/null \
            || die "the worker runs as $SERVICE_USER, which cannot write to ORTHANCSEG_NNUNET_RAW=$ORTHANCSEG_NNUNET_RAW. Fix: chown -R $SERVICE_USER: that folder, or unset ORTHANCSEG_NNUNET_RAW."
    fi
}

# The secrets a service reads itself, copied for its user (mode 600: the worker refuses token files others can read).
write_service_secrets() {
    local name host port query
    for name in orthanc-password admin-token bridge-token viewer-token operator-token; do
        install -m 600 "$SECRETS/$name" "$SERVICE_SECRETS/$name"
    done
    read -r host port query < <(pg_endpoint)
    # The worker's password stays in a pgpass file (mode 600), not in the environment or a command line.
    (umask 077 && printf '%s:%s:%s:%s:%s\n' "$host" "$port" "$PG_WORKER_DB" "$PG_WORKER_ROLE" "$(secret pg-worker-password)" >"$SERVICE_SECRETS/worker.pgpass")
    if is_root; then chown "$SERVICE_USER:$SERVICE_GROUP" "$SERVICE_SECRETS"/*; fi
    link_service_files
}

# ---------------------------------------------------------------------------------------------
# The link between two machines (docs/deployment.md): TLS certificates from a small private CA, the bridge token and
# the worker's Orthanc password, the same on both sides. In $SECRETS/link (root's); the services get copies.

LINK_DIR="$SECRETS/link"
LINK_BUNDLE="$STACK/link-bundle.tar"

split_role() { [[ "$ROLE" == pacs || "$ROLE" == segmentation ]]; }
peer_role() { [[ "$ROLE" == pacs ]] && echo segmentation || echo pacs; }
# The certificate each side serves the link with: nginx's on the PACS side, the worker's on the segmentation side.
link_cert_name() { [[ "$1" == pacs ]] && echo pacs-link || echo worker-link; }

require_link_settings() {
    case "$ROLE" in
        all) return 0 ;;
        pacs | segmentation) ;;
        *) die "ROLE must be all, pacs or segmentation, not '$ROLE'. Fix: make up ROLE=pacs LISTEN=<this machine's address> PEER=<the segmentation server's>" ;;
    esac
    local name
    for name in LISTEN PEER; do
        [[ -n "${!name}" ]] || die "ROLE=$ROLE needs $name: make up ROLE=$ROLE LISTEN=<this machine's address on the link> PEER=<the other machine's address>"
        [[ "${!name}" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || die "$name must be an IPv4 address (the certificates name it), got '${!name}'"
    done
    [[ "$LISTEN" != "$PEER" ]] || die "LISTEN and PEER are both $LISTEN: give this machine's address and the other machine's"
    # Read whole, then searched: under pipefail a `grep -q` that stops reading early can fail the pipeline (SIGPIPE).
    [[ "$(ip -o -4 addr show 2>/dev/null)" == *" inet $LISTEN/"* ]] \
        || die "LISTEN=$LISTEN is not an address of this machine (ip -4 addr). Fix: give the address the other machine reaches this one at"
}

# What make up, make status and make down of this state folder use again.
write_link_env() {
    printf '%s\n' "ORTHANCSEG_ROLE=$ROLE" "ORTHANCSEG_PEER=$PEER" "ORTHANCSEG_LISTEN=$LISTEN" >"$STACK/link.env"
}

# This side's link files: from the bundle the other side wrote (LINK=bundle.tar), from the operator's own files
# (ORTHANCSEG_LINK_CA, _CERT, _KEY; with LINK= too when the other side holds the shared secrets), or a new private CA.
# Then this side's certificate names LISTEN.
link_prepare() {
    split_role || return 0
    local own
    own="$(link_cert_name "$ROLE")"
    make_dirs root:root 0700 "$LINK_DIR"
    ensure_secret link-password
    [[ -n "${ORTHANCSEG_LINK_BUNDLE:-}" ]] && link_consume "$ORTHANCSEG_LINK_BUNDLE"
    if [[ -n "${ORTHANCSEG_LINK_CA:-}${ORTHANCSEG_LINK_CERT:-}${ORTHANCSEG_LINK_KEY:-}" ]]; then
        link_operator_files "$own"
    elif [[ -z "${ORTHANCSEG_LINK_BUNDLE:-}" && ! -s "$LINK_DIR/link-ca.pem" ]]; then
        "$ORTHANCSEG_CONFIG_DIR/link-certs.sh" ca "$LINK_DIR"
        ok "link: a private CA made in $LINK_DIR (its key stays on this machine)"
    fi
    if [[ -s "$LINK_DIR/link-ca.key" ]]; then
        "$ORTHANCSEG_CONFIG_DIR/link-certs.sh" cert "$LINK_DIR" "$own" "$LISTEN"
    fi
    [[ -s "$LINK_DIR/$own.pem" && -s "$LINK_DIR/$own.key" ]] \
        || die "link: no certificate for this side in $LINK_DIR. Fix: make up ROLE=$ROLE ... LINK=<the bundle the other side's make link-bundle wrote>, or this side's own certificate with ORTHANCSEG_LINK_CA, ORTHANCSEG_LINK_CERT and ORTHANCSEG_LINK_KEY"
    cert_names "$LINK_DIR/$own.pem" "$LISTEN" \
        || die "link: the certificate $LINK_DIR/$own.pem does not name LISTEN=$LISTEN. Fix: a bundle made for this address (make link-bundle on the other side with PEER=$LISTEN)"
    # make status asks Orthanc across the link as the worker does; curl reads the password from this file, not its arguments.
    (umask 077 && printf 'machine %s login %s password %s\n' "$PEER" "$LINK_USER" "$(secret link-password)" >"$LINK_DIR/peer.netrc")
    if [[ -s "$LINK_DIR/link-ca.key" && ! -s "$LINK_BUNDLE" ]]; then
        link_bundle_write
    fi
}

# Does the certificate PEM name ADDRESS as an IP subjectAltName?
cert_names() {
    local names
    names="$(openssl x509 -in "$1" -noout -ext subjectAltName 2>/dev/null | tail -n +2 | tr -d ' ' | tr ',' '\n')"
    grep -qxF "IPAddress:$2" <<<"$names"
}

# The operator's own CA, certificate and key (docs/deployment.md, "Your own certificates"), checked before anything is
# installed: a typo fails here, not at the other side's first connection.
link_operator_files() {
    local own="$1" key
    for key in ORTHANCSEG_LINK_CA ORTHANCSEG_LINK_CERT ORTHANCSEG_LINK_KEY; do
        [[ -r "${!key:-}" ]] || die "$key must name a readable PEM file (operator-provided link certificates need all three: CA, this side's certificate and its key)"
    done
    openssl verify -CAfile "$ORTHANCSEG_LINK_CA" "$ORTHANCSEG_LINK_CERT" >/dev/null 2>&1 \
        || die "ORTHANCSEG_LINK_CERT=$ORTHANCSEG_LINK_CERT does not chain to ORTHANCSEG_LINK_CA=$ORTHANCSEG_LINK_CA (openssl verify -CAfile CA CERT). Fix: the certificate your CA signed for this side, and that CA's certificate"
    cert_names "$ORTHANCSEG_LINK_CERT" "$LISTEN" \
        || die "ORTHANCSEG_LINK_CERT=$ORTHANCSEG_LINK_CERT does not name LISTEN=$LISTEN as an IP subjectAltName (it names: $(openssl x509 -in "$ORTHANCSEG_LINK_CERT" -noout -ext subjectAltName 2>/dev/null | tail -n +2 | tr -d ' ')). Fix: a certificate with subjectAltName IP:$LISTEN, or the LISTEN it was made for"
    [[ "$(openssl x509 -in "$ORTHANCSEG_LINK_CERT" -noout -pubkey 2>/dev/null)" == "$(openssl pkey -in "$ORTHANCSEG_LINK_KEY" -pubout 2>/dev/null)" ]] \
        || die "ORTHANCSEG_LINK_KEY=$ORTHANCSEG_LINK_KEY is not the private key of ORTHANCSEG_LINK_CERT (their public keys differ, or the key is not an unencrypted PEM key)"
    if [[ -n "${ORTHANCSEG_LINK_BUNDLE:-}" ]] && ! cmp -s <(openssl x509 -in "$ORTHANCSEG_LINK_CA" -outform DER 2>/dev/null) <(openssl x509 -in "$LINK_DIR/link-ca.pem" -outform DER 2>/dev/null); then
        die "LINK=$ORTHANCSEG_LINK_BUNDLE holds another CA than ORTHANCSEG_LINK_CA=$ORTHANCSEG_LINK_CA: the other side trusts its CA only. Fix: give both sides the same CA"
    fi
    # A private CA made by an earlier make up would sign this side's certificate again: it is replaced.
    [[ -f "$LINK_DIR/link-ca.key" ]] && mv "$LINK_DIR/link-ca.key" "$LINK_DIR/link-ca.key.replaced"
    install -m 644 "$ORTHANCSEG_LINK_CA" "$LINK_DIR/link-ca.pem"
    install -m 644 "$ORTHANCSEG_LINK_CERT" "$LINK_DIR/$own.pem"
    install -m 600 "$ORTHANCSEG_LINK_KEY" "$LINK_DIR/$own.key"
    ok "link: the operator's CA and certificate for $LISTEN installed"
}

# The tarball the other side is given: the CA certificate, the other side's certificate and key (when this side holds
# the CA's key), the bridge token and the worker's Orthanc password. Secret: mode 600, copy it over ssh.
link_bundle_write() {
    split_role || die "make link-bundle is for one side of two machines: make up ROLE=pacs|segmentation LISTEN=... PEER=... first"
    [[ -s "$LINK_DIR/link-ca.pem" ]] || die "no link CA yet: make up ROLE=$ROLE LISTEN=... PEER=... makes it"
    local peer_cert work
    peer_cert="$(link_cert_name "$(peer_role)")"
    work="$(mktemp -d)"
    cp "$LINK_DIR/link-ca.pem" "$work/"
    if [[ -s "$LINK_DIR/link-ca.key" ]]; then
        "$ORTHANCSEG_CONFIG_DIR/link-certs.sh" cert "$LINK_DIR" "$peer_cert" "$PEER"
        cp "$LINK_DIR/$peer_cert.pem" "$LINK_DIR/$peer_cert.key" "$work/"
    else
        warn "this side's CA came from the other side (no CA key here): the bundle holds the secrets and the CA, no certificate"
    fi
    cp "$SECRETS/bridge-token" "$work/bridge-token"
    cp "$SECRETS/link-password" "$work/link-password"
    printf 'for=%s\naddress=%s\npeer=%s\n' "$(peer_role)" "$PEER" "$LISTEN" >"$work/link.txt"
    (umask 077 && tar -C "$work" -cf "$LINK_BUNDLE.tmp" .) && mv "$LINK_BUNDLE.tmp" "$LINK_BUNDLE"
    rm -rf "$work"
    chmod 600 "$LINK_BUNDLE"
    ok "link bundle for the $(peer_role) side ($PEER) written: $LINK_BUNDLE"
    say "     Copy it to the other machine (it holds secrets: scp, mode 600) and start that side with:"
    say "       make up ROLE=$(peer_role) LISTEN=$PEER PEER=$LISTEN LINK=link-bundle.tar"
}

link_consume() {
    local bundle="$1" work line for="" address="" peer=""
    [[ -r "$bundle" ]] || die "LINK=$bundle: no such readable file (the tarball make link-bundle wrote on the other machine)"
    work="$(mktemp -d)"
    tar -C "$work" -xf "$bundle" || die "LINK=$bundle is not a tar file made by make link-bundle"
    [[ -f "$work/link.txt" && -f "$work/link-ca.pem" && -f "$work/bridge-token" && -f "$work/link-password" ]] \
        || { rm -rf "$work"; die "LINK=$bundle lacks link.txt, link-ca.pem, bridge-token or link-password: not a bundle of make link-bundle"; }
    while IFS='=' read -r key value; do
        case "$key" in for) for="$value" ;; address) address="$value" ;; peer) peer="$value" ;; esac
    done <"$work/link.txt"
    if [[ "$for" != "$ROLE" || "$address" != "$LISTEN" || "$peer" != "$PEER" ]]; then
        rm -rf "$work"
        die "LINK=$bundle was made for ROLE=$for LISTEN=$address PEER=$peer, not ROLE=$ROLE LISTEN=$LISTEN PEER=$PEER. Fix: make link-bundle on the other side with the right PEER, or correct ROLE/LISTEN/PEER here"
    fi
    install -m 644 "$work/link-ca.pem" "$LINK_DIR/link-ca.pem"
    local own
    own="$(link_cert_name "$ROLE")"
    if [[ -f "$work/$own.pem" ]]; then
        install -m 644 "$work/$own.pem" "$LINK_DIR/$own.pem"
        install -m 600 "$work/$own.key" "$LINK_DIR/$own.key"
    fi
    (umask 077 && tr -d '\n' <"$work/bridge-token" >"$SECRETS/bridge-token" && tr -d '\n' <"$work/link-password" >"$SECRETS/link-password")
    rm -rf "$work"
    ok "link: CA, certificate, bridge token and the worker's Orthanc password taken from $bundle"
}

# Copies the services read: the worker's certificate and key (segmentation side), nginx's (PACS side), the CA, the password.
link_service_files() {
    split_role || return 0
    local own
    own="$(link_cert_name "$ROLE")"
    install -m 644 "$LINK_DIR/link-ca.pem" "$SERVICE_SECRETS/link-ca.pem"
    install -m 644 "$LINK_DIR/$own.pem" "$SERVICE_SECRETS/$own.pem"
    install -m 600 "$LINK_DIR/$own.key" "$SERVICE_SECRETS/$own.key"
    install -m 600 "$SECRETS/link-password" "$SERVICE_SECRETS/link-password"
    if is_root; then chown "$SERVICE_USER:$SERVICE_GROUP" "$SERVICE_SECRETS"/*; fi
}

# make status: can this side reach the other across the link, over TLS, with the link's credentials?
link_status() {
    split_role || return 0
    local detail
    if [[ "$ROLE" == segmentation ]]; then
        if detail="$(curl -sS --max-time 5 --cacert "$LINK_DIR/link-ca.pem" --netrc-file "$LINK_DIR/peer.netrc" -o /dev/null \
            -w '%{http_code}' "https://$PEER:$LINK_ORTHANC_PORT/system" 2>&1)" && [[ "$detail" == 200 ]]; then
            status_line "Link" running "Orthanc at https://$PEER:$LINK_ORTHANC_PORT (TLS, CA $LINK_DIR/link-ca.pem, account $LINK_USER)"
        else
            status_line "Link" "unreachable" "https://$PEER:$LINK_ORTHANC_PORT: ${detail:-no answer}"
            return 1
        fi
    else
        if detail="$(/usr/bin/python3 "$ORTHANCSEG_CONFIG_DIR/grpc-health.py" "$PEER:$WORKER_PORT" "" 5 "$LINK_DIR/link-ca.pem" 2>&1)"; then
            status_line "Link" running "worker at $PEER:$WORKER_PORT (gRPC over TLS, CA $LINK_DIR/link-ca.pem)"
        else
            status_line "Link" "unreachable" "worker at $PEER:$WORKER_PORT: $detail"
            return 1
        fi
    fi
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL

# Host, port and extra libpq parameters of the server the stack uses, as "host port query".
pg_endpoint() {
    if external_pg; then
        # The URL (with the superuser's password) is read from the environment: a command line is visible in ps.
        ORTHANCSEG_PG_URL="$ORTHANCSEG_PG_URL" /usr/bin/python3 - <<'PY'
import os, sys, urllib.parse
url = urllib.parse.urlsplit(os.environ["ORTHANCSEG_PG_URL"])
if url.scheme not in ("postgres", "postgresql") or not url.hostname:
    sys.exit("ORTHANCSEG_PG_URL must look like postgresql://admin:password@host:5432/postgres")
print(url.hostname, url.port or 5432, url.query or "-")
PY
    else
        echo "127.0.0.1 $PG_PORT -"
    fi
}

# ORTHANCSEG_PG_URL without its password, then the password alone: psql is given the first on its command line and
# the password in PGPASSWORD, which only its owner can read (/proc/PID/environ).
external_pg_url_parts() {
    ORTHANCSEG_PG_URL="$ORTHANCSEG_PG_URL" /usr/bin/python3 - <<'PY'
import os, urllib.parse
url = urllib.parse.urlsplit(os.environ["ORTHANCSEG_PG_URL"])
host = url.netloc.rpartition("@")[2]
user = url.username or ""
print(urllib.parse.urlunsplit(url._replace(netloc=(user + "@" if user else "") + host)))
print(urllib.parse.unquote(url.password or ""))
PY
}

pg_admin_sql() {
    if external_pg; then
        local url password
        { read -r url; read -r password; } < <(external_pg_url_parts)
        PGPASSWORD="$password" "$(pg_bin)/psql" "$url" -v ON_ERROR_STOP=1 -qAt -f -
    else
        as_pg "$(pg_bin)/psql" -h "$PG_HOME" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt -f -
    fi
}

pg_ready() {
    local host port query
    read -r host port query < <(pg_endpoint)
    "$(pg_bin)/pg_isready" -q -h "$host" -p "$port" -t 2
}

pg_up() {
    if external_pg; then
        step "PostgreSQL: using the existing server named by ORTHANCSEG_PG_URL"
        pg_ready || die "the PostgreSQL server in ORTHANCSEG_PG_URL does not answer (pg_isready). Fix: check the URL, the server and its pg_hba.conf."
    elif program_alive postgres; then
        await_started "PostgreSQL" "$LOGS/postgres.log" "program_alive postgres" 60 pg_ready \
            "PostgreSQL already running on 127.0.0.1:$PG_PORT" "pg_isready did not answer within 60 s"
    else
        step "PostgreSQL: private cluster on 127.0.0.1:$PG_PORT"
        is_root && chown postgres:postgres "$PG_HOME" && chmod 700 "$PG_HOME"
        if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
            as_pg "$(pg_bin)/initdb" -D "$PG_DATA" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
                -E UTF8 --locale=C >"$LOGS/postgres-initdb.log" 2>&1 \
                || fail_part "PostgreSQL (initdb)" "$LOGS/postgres-initdb.log" "initdb failed"
        fi
        require_free_port "$PG_PORT" "PostgreSQL" ORTHANCSEG_PG_PORT
        start_program postgres "PostgreSQL" "$LOGS/postgres.log"
        await_started "PostgreSQL" "$LOGS/postgres.log" "program_alive postgres" 60 pg_ready \
            "PostgreSQL started" "pg_isready did not answer within 60 s. Fix: read the log; a full disk is the usual cause"
    fi
    pg_provision
    ok "PostgreSQL ready; databases $PG_ORTHANC_DB and $PG_WORKER_DB"
}

# Two databases with their own roles, so neither service can read the other's data. Idempotent:
# passwords are (re)set from .stack/secrets on every start.
pg_provision() {
    local orthanc_pw worker_pw browser_pw
    orthanc_pw="$(secret pg-orthanc-password)"
    worker_pw="$(secret pg-worker-password)"
    browser_pw="$(secret pg-browser-password)"
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
-- Run on every start: no notice for what is already so (e.g. the membership below).
SET client_min_messages = warning;
SELECT 'CREATE ROLE $PG_READER_ROLE NOLOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$PG_READER_ROLE') \gexec
SELECT 'CREATE ROLE $PG_BROWSER_ROLE LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$PG_BROWSER_ROLE') \gexec
ALTER ROLE $PG_BROWSER_ROLE LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT PASSWORD '$browser_pw';
GRANT $PG_READER_ROLE TO $PG_BROWSER_ROLE;
GRANT CONNECT ON DATABASE $PG_WORKER_DB TO $PG_READER_ROLE;
ALTER ROLE $PG_BROWSER_ROLE IN DATABASE $PG_WORKER_DB SET search_path = browse;
SQL
}

# The read-only login for people (Adminer, pgAdmin), as pgAdmin's servers.json: imported in one step
# (docs/operations.md, "Browsing the database"). The password is not in it: pgAdmin asks for it.
write_pgadmin_servers() {
    local host port query
    read -r host port query < <(pg_endpoint)
    cat >"$PGADMIN_SERVERS" <<EOF
{
  "Servers": {
    "1": {
      "Name": "OrthancSeg records (read-only)",
      "Group": "OrthancSeg",
      "Host": "$host",
      "Port": $port,
      "MaintenanceDB": "$PG_WORKER_DB",
      "Username": "$PG_BROWSER_ROLE",
      "SSLMode": "prefer",
      "Comment": "Views of schema browse: workflows, cases, labels, snapshots, training_runs, models. Password: $SECRETS/pg-browser-password"
    }
  }
}
EOF
}

# ---------------------------------------------------------------------------------------------
# Orthanc

orthanc_curl() {
    # Credentials come from a netrc file, not curl's command line (visible in ps).
    curl -sf --max-time 5 --netrc-file "$SECRETS/orthanc.netrc" "$@"
}

# Orthanc's credentials for curl (orthanc_curl, and operators: curl --netrc-file .stack/secrets/orthanc.netrc ...).
write_orthanc_netrc() {
    (umask 077 && printf 'machine 127.0.0.1 login %s password %s\nmachine localhost login %s password %s\n' \
        "$ORTHANC_USER" "$(secret orthanc-password)" "$ORTHANC_USER" "$(secret orthanc-password)" >"$SECRETS/orthanc.netrc")
}

orthanc_healthy() { orthanc_curl "http://127.0.0.1:$ORTHANC_HTTP_PORT/system" >/dev/null; }

orthanc_up() {
    if program_alive orthanc; then
        await_started "Orthanc" "$LOGS/orthanc.log" "program_alive orthanc" 120 orthanc_healthy \
            "Orthanc already running on http://127.0.0.1:$ORTHANC_HTTP_PORT/" "it runs (pid $(program_pid orthanc)) but /system did not answer within 120 s"
        return 0
    fi
    step "Orthanc: HTTP $ORTHANC_HTTP_PORT, DICOM $ORTHANC_DICOM_PORT, PostgreSQL index, DICOMweb, GDCM, Python bridge"
    [[ -f "$BRIDGE_SCRIPT" ]] \
        || die "the Orthanc bridge script $BRIDGE_SCRIPT is missing, so Orthanc could not forward events to the worker. Fix: use a checkout that contains plugin-bridge/ (git status, git log -- plugin-bridge)."
    if [[ -x "$ORTHANCSEG_REPO/plugin-bridge/generate.sh" ]]; then
        "$ORTHANCSEG_REPO/plugin-bridge/generate.sh" >"$LOGS/bridge-generate.log" 2>&1 \
            || fail_part "the bridge's protobuf modules" "$LOGS/bridge-generate.log" "plugin-bridge/generate.sh failed"
    fi
    # Orthanc loads the bridge (and its generated modules beside it) from a copy its user can read.
    rm -rf "$BRIDGE_DIR"
    mkdir -p "$BRIDGE_DIR"
    cp "$BRIDGE_SCRIPT" "$BRIDGE_DIR/"
    # generate.sh makes "generated" a link to the latest output: copy what it points to, not the link.
    [[ -d "$ORTHANCSEG_REPO/plugin-bridge/generated" ]] && cp -rL "$ORTHANCSEG_REPO/plugin-bridge/generated" "$BRIDGE_DIR/"
    share_with_service "$BRIDGE_DIR"
    require_free_port "$ORTHANC_HTTP_PORT" "Orthanc (HTTP)" ORTHANCSEG_ORTHANC_HTTP_PORT
    require_free_port "$ORTHANC_DICOM_PORT" "Orthanc (DICOM)" ORTHANCSEG_ORTHANC_DICOM_PORT
    local host port query uri
    read -r host port query < <(pg_endpoint)
    # The passwords stay in their files: the renderer reads them (its arguments are visible in ps).
    uri="postgresql://$PG_ORTHANC_ROLE@$host:$port/$PG_ORTHANC_DB"
    [[ "$query" != "-" ]] && uri="$uri?$query"
    # The PACS side of two machines: the worker's own account, the bridge calling the worker across the link over TLS.
    local link=()
    [[ "$ROLE" == pacs ]] && link=(LINK_USER="$LINK_USER" LINK_PASSWORD_FILE="$SECRETS/link-password" WORKER_HOST="$PEER"
        WORKER_CA_FILE="$SERVICE_SECRETS/link-ca.pem")
    "$ORTHANCSEG_CONFIG_DIR/render-orthanc-config.sh" "$ORTHANC_DIR/orthanc.json" \
        HTTP_PORT="$ORTHANC_HTTP_PORT" DICOM_PORT="$ORTHANC_DICOM_PORT" DICOM_AET="$ORTHANC_AET" \
        STORAGE_DIR="$ORTHANC_DIR/storage" HTTP_USER="$ORTHANC_USER" HTTP_PASSWORD_FILE="$SECRETS/orthanc-password" \
        STABLE_AGE="$STABLE_AGE" PYTHON_SCRIPT="$BRIDGE_DIR/$(basename "$BRIDGE_SCRIPT")" PG_URI="$uri" PG_PASSWORD_FILE="$SECRETS/pg-orthanc-password" \
        WORKER_PORT="$WORKER_PORT" BRIDGE_TOKEN_FILE="$SERVICE_SECRETS/bridge-token" MODALITIES_FILE="$MODALITIES" "${link[@]}" \
        || die "could not render $ORTHANC_DIR/orthanc.json (see the message above; a mistake in $MODALITIES is named there)"
    # Passwords inside: root's file, readable by Orthanc's group only.
    share_with_service "$ORTHANC_DIR/orthanc.json"
    start_program orthanc "Orthanc" "$LOGS/orthanc.log"
    await_started "Orthanc" "$LOGS/orthanc.log" "program_alive orthanc" 120 orthanc_healthy \
        "Orthanc ready on http://127.0.0.1:$ORTHANC_HTTP_PORT/" "/system did not answer within 120 s"
}

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

# The worker's whole configuration: standard .NET configuration from the environment (`__` separates sections).
# supervisord's program and the systemd unit are given the same lines.
worker_environment() {
    local host port query ssl=""
    read -r host port query < <(pg_endpoint)
    [[ "$query" == *sslmode=require* || "$query" == *sslmode=verify* ]] && ssl=";SSL Mode=Require"
    cat <<EOF
DOTNET_ENVIRONMENT=Production
ASPNETCORE_ENVIRONMENT=Production
HOME=$HOME_DIR
OrthancSeg__Database__ConnectionString=Host=$host;Port=$port;Database=$PG_WORKER_DB;Username=$PG_WORKER_ROLE;Passfile=$SERVICE_SECRETS/worker.pgpass$ssl
$(worker_orthanc_environment)
OrthancSeg__Auth__BridgeTokenFile=$SERVICE_SECRETS/bridge-token
OrthancSeg__Auth__AdminTokenFile=$SERVICE_SECRETS/admin-token
OrthancSeg__Auth__Tokens__viewer__File=$SERVICE_SECRETS/viewer-token
OrthancSeg__Auth__Tokens__viewer__Role=viewer
OrthancSeg__Auth__Tokens__operator__File=$SERVICE_SECRETS/operator-token
OrthancSeg__Auth__Tokens__operator__Role=operator
OrthancSeg__Datasets__RawRoot=${ORTHANCSEG_NNUNET_RAW:-$DATA_DIR/nnUNet_raw}
Kestrel__Endpoints__Grpc__Url=http://127.0.0.1:$WORKER_PORT
Kestrel__Endpoints__Grpc__Protocols=Http2
EOF
    # The segmentation side: the bridge's calls arrive over TLS on the link address (plain HTTP stays on loopback).
    [[ "$ROLE" == segmentation ]] && cat <<EOF
Kestrel__Endpoints__Link__Url=https://$LISTEN:$WORKER_PORT
Kestrel__Endpoints__Link__Protocols=Http2
Kestrel__Endpoints__Link__Certificate__Path=$SERVICE_SECRETS/worker-link.pem
Kestrel__Endpoints__Link__Certificate__KeyPath=$SERVICE_SECRETS/worker-link.key
EOF
    return 0
}

# How the worker reaches Orthanc: on loopback as Orthanc's administrator, or across the link over TLS with its own
# read-and-upload account (the segmentation side).
worker_orthanc_environment() {
    if [[ "$ROLE" == segmentation ]]; then
        cat <<EOF
OrthancSeg__Orthanc__Url=https://$PEER:$LINK_ORTHANC_PORT
OrthancSeg__Orthanc__Username=$LINK_USER
OrthancSeg__Orthanc__PasswordFile=$SERVICE_SECRETS/link-password
OrthancSeg__Orthanc__CaFile=$SERVICE_SECRETS/link-ca.pem
EOF
    else
        cat <<EOF
OrthancSeg__Orthanc__Url=http://127.0.0.1:$ORTHANC_HTTP_PORT
OrthancSeg__Orthanc__Username=$ORTHANC_USER
OrthancSeg__Orthanc__PasswordFile=$SERVICE_SECRETS/orthanc-password
EOF
    fi
}

worker_up() {
    if program_alive worker; then
        await_started "the worker" "$LOGS/worker.log" "program_alive worker" 90 worker_healthy \
            "worker already running on http://127.0.0.1:$WORKER_PORT" "it runs (pid $(program_pid worker)) but its gRPC health check did not pass within 90 s"
        return 0
    fi
    step "worker: building and starting orthancseg-worker on 127.0.0.1:$WORKER_PORT"
    require_free_port "$WORKER_PORT" "the worker (gRPC)" ORTHANCSEG_WORKER_PORT
    publish worker/OrthancSeg.Worker "$APP_DIR/worker" "$LOGS/worker-build.log"
    # Root's build, which the worker's user may read and not change.
    share_with_service "$APP_DIR/worker"
    # The CLI speaks the worker's contract: rebuild it with the worker it talks to.
    cli_install force
    start_program worker "the worker" "$LOGS/worker.log"
    await_started "the worker" "$LOGS/worker.log" "program_alive worker" 90 worker_healthy \
        "worker ready (gRPC health SERVING) on http://127.0.0.1:$WORKER_PORT" "its gRPC health check did not pass within 90 s"
}

cli_install() {
    if [[ -x "$STACK/bin/orthancseg" && -f "$APP_DIR/cli/orthancseg.dll" && "${1:-}" != force ]]; then
        return 0
    fi
    publish worker/OrthancSeg.Cli "$APP_DIR/cli" "$LOGS/cli-build.log"
    share_with_service "$APP_DIR/cli"
    # Root's (or the admin's) tool: it reads the admin token from root's secrets, never a copy a service could change.
    cat >"$STACK/bin/orthancseg" <<EOF
#!/bin/sh
# OrthancSeg admin CLI for the stack in $STACK: finds the worker and the admin token by itself.
export ORTHANCSEG_URL="\${ORTHANCSEG_URL:-http://127.0.0.1:$WORKER_PORT}"
export ORTHANCSEG_TOKEN_FILE="\${ORTHANCSEG_TOKEN_FILE:-$SECRETS/admin-token}"
exec dotnet "$APP_DIR/cli/orthancseg.dll" "\$@"
EOF
    chmod 750 "$STACK/bin/orthancseg"
    ok "CLI installed as $STACK/bin/orthancseg"
}

# ---------------------------------------------------------------------------------------------
# OHIF behind nginx

ohif_healthy() {
    curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$OHIF_PORT/" \
        && curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$OHIF_PORT/dicom-web/studies?limit=1"
}

ohif_up() {
    if program_alive nginx; then
        await_started "OHIF (nginx)" "$LOGS/nginx.log" "program_alive nginx" 30 ohif_healthy \
            "OHIF already served on http://127.0.0.1:$OHIF_PORT/" "nginx runs but the viewer or its /dicom-web/ proxy did not answer 200 within 30 s"
        return 0
    fi
    if [[ "$ROLE" == pacs ]]; then
        step "OHIF $OHIF_VERSION: nginx on 127.0.0.1:$OHIF_PORT, /dicom-web/ proxied to Orthanc; the link to Orthanc on https://$LISTEN:$LINK_ORTHANC_PORT"
    else
        step "OHIF $OHIF_VERSION: nginx on 127.0.0.1:$OHIF_PORT, /dicom-web/ proxied to Orthanc; Adminer on 127.0.0.1:$ADMINER_PORT"
    fi
    "$ORTHANCSEG_CONFIG_DIR/install-ohif.sh"
    require_free_port "$OHIF_PORT" "OHIF (nginx)" ORTHANCSEG_OHIF_PORT
    local run_as=() include="$ADMINER_DIR/nginx-site.conf"
    if [[ "$ROLE" == pacs ]]; then
        require_free_port "$LINK_ORTHANC_PORT" "the link to Orthanc (nginx, TLS)" ORTHANCSEG_LINK_ORTHANC_PORT
        "$ORTHANCSEG_CONFIG_DIR/render-link-proxy.sh" "$NGINX_DIR/link-site.conf" LISTEN="$LISTEN:$LINK_ORTHANC_PORT" \
            CERT="$SERVICE_SECRETS/pacs-link.pem" KEY="$SERVICE_SECRETS/pacs-link.key" ORTHANC_URL="http://127.0.0.1:$ORTHANC_HTTP_PORT" \
            LINK_USER="$LINK_USER" LOG_DIR="$WEB_LOGS" || die "could not render $NGINX_DIR/link-site.conf (see the message above)"
        share_with_service "$NGINX_DIR/link-site.conf"
        include="$NGINX_DIR/link-site.conf"
    else
        require_free_port "$ADMINER_PORT" "Adminer (nginx)" ORTHANCSEG_ADMINER_PORT
    fi
    is_root && run_as=(RUN_AS="$SERVICE_USER")
    "$ORTHANCSEG_CONFIG_DIR/render-nginx-config.sh" "$NGINX_DIR/nginx.conf" \
        LISTEN="127.0.0.1:$OHIF_PORT" OHIF_ROOT="$STACK/ohif/dist" ORTHANC_URL="http://127.0.0.1:$ORTHANC_HTTP_PORT" \
        ORTHANC_USER="$ORTHANC_USER" ORTHANC_PASSWORD_FILE="$SECRETS/orthanc-password" \
        PID_FILE="$WEB_RUN/nginx.pid" LOG_DIR="$WEB_LOGS" TEMP_DIR="$NGINX_DIR/tmp" SERVER_NAMES="$SERVER_NAMES" \
        INCLUDE="$include" "${run_as[@]}" \
        || die "could not render $NGINX_DIR/nginx.conf (see the message above)"
    start_program nginx "OHIF (nginx)" "$LOGS/nginx.log"
    await_started "OHIF (nginx)" "$LOGS/nginx.log" "program_alive nginx" 30 ohif_healthy \
        "OHIF ready on http://127.0.0.1:$OHIF_PORT/" "http://127.0.0.1:$OHIF_PORT/ or its /dicom-web/ proxy did not answer 200 within 30 s"
    if [[ "$ROLE" == pacs ]]; then
        ok "the link to Orthanc: https://$LISTEN:$LINK_ORTHANC_PORT/ (TLS, the worker's account $LINK_USER only)"
        return 0
    fi
    await_started "Adminer" "$WEB_LOGS/php-fpm.log" "program_alive adminer" 30 adminer_healthy \
        "Adminer ready on http://127.0.0.1:$ADMINER_PORT/ (read-only login: $PG_BROWSER_ROLE, make status shows where its password is)" \
        "http://127.0.0.1:$ADMINER_PORT/ did not show Adminer's login page within 30 s"
}

# ---------------------------------------------------------------------------------------------
# Adminer: the database GUI, Debian's adminer run by php-fpm behind the same nginx, on loopback

# The page is read whole before it is searched: with pipefail, `curl | grep -q` fails whenever grep stops reading
# before curl has written the rest of the page (curl dies of the closed pipe), so a healthy Adminer read as down.
adminer_healthy() {
    local page
    page="$(curl -sf --max-time 15 "http://127.0.0.1:$ADMINER_PORT/" 2>/dev/null)" && [[ "$page" == *'auth[password]'* ]]
}

# php-fpm's configuration, and nginx's server block for Adminer (included by nginx.conf); php-fpm starts here, before
# nginx, which is started by ohif_up.
adminer_up() {
    [[ -f /usr/share/adminer/adminer.php ]] || die "Adminer is missing (/usr/share/adminer/adminer.php). Fix: apt-get install adminer (make up's install-deps.sh does)."
    local host port query
    read -r host port query < <(pg_endpoint)
    install -m 640 "$ORTHANCSEG_CONFIG_DIR/adminer.php" "$ADMINER_DIR/index.php"
    cat >"$ADMINER_DIR/nginx-site.conf" <<EOF
# Generated by orthanc-config/stack.sh: Adminer (docs/operations.md, "Browsing the database"), on loopback only.
server {
    listen 127.0.0.1:$ADMINER_PORT;
    access_log $WEB_LOGS/adminer-access.log orthancseg;
    # A page of another origin that a DNS rebinding points here is refused.
    if (\$http_host !~ "^(127\.0\.0\.1|localhost):$ADMINER_PORT\$") {
        return 421;
    }
    # Adminer is one script; it serves its own styles and scripts (?file=...).
    location / {
        limit_except GET POST { deny all; }
        include /etc/nginx/fastcgi_params;
        fastcgi_param SCRIPT_FILENAME $ADMINER_DIR/index.php;
        fastcgi_param SCRIPT_NAME /index.php;
        fastcgi_param ORTHANCSEG_PG_SERVER $host:$port;
        fastcgi_param ORTHANCSEG_PG_DATABASE $PG_WORKER_DB;
        fastcgi_pass unix:$WEB_RUN/php-fpm.sock;
    }
}
EOF
    cat >"$ADMINER_DIR/php-fpm.conf" <<EOF
; Generated by orthanc-config/stack.sh: php-fpm for Adminer, in the foreground under supervisord, as $SERVICE_USER.
[global]
pid = $WEB_RUN/php-fpm.pid
error_log = $WEB_LOGS/php-fpm.log
daemonize = no

[adminer]
listen = $WEB_RUN/php-fpm.sock
listen.mode = 0600
pm = ondemand
pm.max_children = 4
pm.process_idle_timeout = 60s
clear_env = yes
; Adminer's sessions hold the login: in the state folder, for this user only.
php_admin_value[session.save_path] = $ADMINER_DIR/sessions
php_admin_value[open_basedir] = /usr/share/adminer:$ADMINER_DIR:/tmp
php_admin_flag[expose_php] = off
php_admin_value[upload_max_filesize] = 1M
EOF
    share_with_service "$ADMINER_DIR/index.php" "$ADMINER_DIR/nginx-site.conf" "$ADMINER_DIR/php-fpm.conf"
    program_alive adminer && return 0
    start_program adminer "Adminer (php-fpm)" "$LOGS/adminer.log"
}

# ---------------------------------------------------------------------------------------------
# Supervision: supervisord here, systemd units for sites that run systemd. Both are written from the
# same description of each program (program_spec), so they start exactly the same commands.

sctl() { supervisorctl -c "$SUPERVISOR_CONF" "$@"; }

# Debian's php-fpm (package php8.2-fpm; the newest one installed).
php_fpm() {
    local fpm
    fpm="$(ls /usr/sbin/php-fpm* 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$fpm" ]] || die "php-fpm is missing. Fix: apt-get install php8.2-fpm php8.2-pgsql (make up's install-deps.sh does)."
    printf '%s' "$fpm"
}

supervisor_running() {
    [[ -f "$SUPERVISOR_CONF" ]] && pid_alive "$RUN/supervisord.pid" && sctl pid >/dev/null 2>&1
}

# supervisord's state of a program: RUNNING, STARTING, BACKOFF (restarting after a failed start), STOPPED,
# EXITED, FATAL (gave up); empty when supervisord does not run.
program_state() {
    supervisor_running || return 0
    { sctl status "$1" 2>/dev/null || true; } | awk 'NR == 1 { print $2 }'
}

program_alive() { [[ "$(program_state "$1")" =~ ^(RUNNING|STARTING|BACKOFF)$ ]]; }

program_pid() { sctl pid "$1" 2>/dev/null || echo 0; }

restarts_of() { cat "$COUNTS/$1" 2>/dev/null || echo 0; }

# Asks supervisord to start a program; it waits for startsecs, so a part that dies at once is named here.
start_program() {
    local name="$1" part="$2" log="$3" out
    if ! out="$(sctl start "$name" 2>&1)" || [[ "$out" == *ERROR* ]]; then
        fail_part "$part" "$log" "supervisord could not start it ($out)"
    fi
}

# The description of one program, in the variables P_*: command (array), working directory, user (empty: the
# one running make up), stop signal, seconds to wait before SIGKILL, seconds it must stay up to count as
# started, log file, description.
program_spec() {
    P_USER="" P_DIR="$STACK" P_STOPSIGNAL=TERM P_STOPWAIT=30 P_STARTSECS=5 P_ENV=""
    is_root && P_USER="$(program_user "$1")"
    case "$1" in
        postgres)
            # In the foreground (not pg_ctl), so supervisord is its parent and sees it die. Its socket is for its own
            # user (the stack's psql runs as postgres); the services connect over TCP with passwords.
            P_COMMAND=("$(pg_bin)/postgres" -D "$PG_DATA" -p "$PG_PORT" -c listen_addresses=127.0.0.1 -k "$PG_HOME"
                -c unix_socket_permissions=0700)
            P_DIR="$PG_HOME"
            # SIGINT is PostgreSQL's fast shutdown (pg_ctl stop -m fast).
            P_STOPSIGNAL=INT P_STOPWAIT=60 P_STARTSECS=3
            P_LOG="$LOGS/postgres.log" P_DESC="PostgreSQL (private cluster)"
            ;;
        orthanc)
            P_COMMAND=(/usr/sbin/Orthanc "$ORTHANC_DIR/orthanc.json")
            P_DIR="$ORTHANC_DIR" P_STOPWAIT=60
            P_LOG="$LOGS/orthanc.log" P_DESC="Orthanc (PACS)"
            ;;
        worker)
            P_COMMAND=("$(command -v dotnet)" "$APP_DIR/worker/orthancseg-worker.dll")
            P_DIR="$APP_DIR/worker" P_ENV="$(worker_environment)"
            P_LOG="$LOGS/worker.log" P_DESC="worker"
            ;;
        adminer)
            P_COMMAND=("$(php_fpm)" --nodaemonize --fpm-config "$ADMINER_DIR/php-fpm.conf")
            P_DIR="$ADMINER_DIR" P_STOPSIGNAL=QUIT P_STOPWAIT=10 P_STARTSECS=2
            P_LOG="$LOGS/adminer.log" P_DESC="php-fpm (Adminer, the database GUI)"
            ;;
        nginx)
            # nginx writes its own logs (in logs/web/, a folder of its user); supervisord keeps what it prints.
            P_COMMAND=(/usr/sbin/nginx -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" -e "$WEB_LOGS/nginx-error.log" -g "daemon off;")
            P_DIR="$NGINX_DIR" P_STOPSIGNAL=QUIT P_STOPWAIT=10 P_STARTSECS=2
            P_LOG="$LOGS/nginx.log" P_DESC="nginx (OHIF viewer and Adminer)"
            ;;
    esac
}

# Neither supervisord nor systemd can be given a path holding a double quote or a newline. Checked before
# anything is written, as quote_words runs in subshells where die cannot stop the script.
require_plain_paths() {
    local path
    for path in "$STACK" "$ORTHANCSEG_REPO" "${ORTHANCSEG_NNUNET_RAW:-}"; do
        [[ "$path" != *[\"$'\n']* ]] || die "cannot supervise programs under '$path': it holds a double quote or a newline. Fix: move the checkout or ORTHANCSEG_STACK_DIR to a plainer path."
    done
}

# Words for supervisord's and systemd's command lines: quoted when they hold blanks or ';'; '%' doubled for both.
quote_words() {
    local word out=()
    for word in "$@"; do
        [[ "$word" != *[\"$'\n']* ]] || die "cannot supervise a command with a double quote or newline in '$word'. Fix: move the checkout or ORTHANCSEG_STACK_DIR to a plainer path."
        word="${word//%/%%}"
        [[ "$word" == *[[:space:]\;]* ]] && word="\"$word\""
        out+=("$word")
    done
    printf '%s' "${out[*]}"
}

write_supervisor_conf() {
    require_plain_paths
    ((${#SUPERVISOR_SOCK} < 100)) \
        || die "supervisord's socket path $SUPERVISOR_SOCK is too long for a unix socket. Fix: a shorter ORTHANCSEG_STACK_DIR."
    local name key value env priority=10 socket_access="chmod=0700" listener_user="" recorder
    # The crash-recorder runs as the service user and controls supervisord through its socket (restarting Orthanc after
    # PostgreSQL, signalling nginx to reopen its logs): the socket is open to the service group. supervisord starts
    # only the programs written here (root's file), each as its user, so that group gains no more than stop and start.
    if is_root; then
        socket_access="chmod=0770"$'\n'"chown=root:$SERVICE_GROUP"
        listener_user="user=$SERVICE_USER"
    fi
    # The listener's script is copied where its user can read it (the clone may be private).
    recorder="$APP_DIR/supervisor-events.py"
    install -m 640 "$ORTHANCSEG_CONFIG_DIR/supervisor-events.py" "$recorder"
    share_with_service "$recorder"
    local recorder_args=("$recorder" "$LOGS/supervisord.log" "$COUNTS")
    [[ "$ROLE" != segmentation ]] && ! external_pg && recorder_args+=(postgres:orthanc)
    case "$ROLE" in
        segmentation) ;;
        pacs) recorder_args+=("nginx=$WEB_LOGS/nginx-access.log" "nginx=$WEB_LOGS/link-access.log" "nginx=$WEB_LOGS/nginx-error.log") ;;
        *) recorder_args+=("nginx=$WEB_LOGS/nginx-access.log" "nginx=$WEB_LOGS/adminer-access.log" "nginx=$WEB_LOGS/nginx-error.log"
            "adminer=$WEB_LOGS/php-fpm.log") ;;
    esac
    {
        cat <<EOF
; Generated by orthanc-config/stack.sh on every start of supervisord; edits are lost.
; The stack's own supervisord: make up starts it and then each program in order (autostart=false), waiting for
; its health check; from then on supervisord restarts a program that dies (autorestart), with a growing delay
; between attempts that die at once (startsecs, startretries). make down stops everything and supervisord itself.

[unix_http_server]
file=$(quote_words "$SUPERVISOR_SOCK")
$socket_access

[supervisord]
logfile=$(quote_words "$LOGS/supervisord.log")
logfile_maxbytes=10MB
logfile_backups=5
loglevel=info
pidfile=$(quote_words "$RUN/supervisord.pid")
childlogdir=$(quote_words "$LOGS")
directory=$(quote_words "$STACK")
identifier=orthancseg
umask=027

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://$(quote_words "$SUPERVISOR_SOCK")

; Counts restarts and logs each with the program's name and exit reason (its stderr is restarts.log): supervisord keeps
; no count. postgres:orthanc: Orthanc is restarted when PostgreSQL died, as its PostgreSQL plugin never reconnects.
; PROGRAM=FILE: logs the parts write themselves, rotated by size every minute (TICK_60).
[eventlistener:crash-recorder]
command=/usr/bin/python3 $(quote_words "${recorder_args[@]}")
events=PROCESS_STATE_EXITED,PROCESS_STATE_BACKOFF,PROCESS_STATE_FATAL,TICK_60
$listener_user
buffer_size=1024
autostart=true
autorestart=true
stdout_logfile=NONE
stderr_logfile=$(quote_words "$RESTARTS_LOG")
stderr_logfile_maxbytes=1MB
stderr_logfile_backups=1
EOF
        for name in $(programs); do
            program_spec "$name"
            printf '\n[program:%s]\n' "$name"
            printf 'command=%s\n' "$(quote_words "${P_COMMAND[@]}")"
            printf 'directory=%s\n' "$(quote_words "$P_DIR")"
            [[ -n "$P_USER" ]] && printf 'user=%s\n' "$P_USER"
            if [[ -n "$P_ENV" ]]; then
                local pairs=()
                while IFS= read -r env; do
                    key="${env%%=*}" value="${env#*=}"
                    [[ "$value" != *\"* ]] || die "the worker setting $key holds a double quote, which supervisord cannot pass on"
                    pairs+=("$key=\"${value//%/%%}\"")
                done <<<"$P_ENV"
                printf 'environment=%s\n' "$(IFS=,; echo "${pairs[*]}")"
            fi
            cat <<EOF
priority=$priority
umask=027
autostart=false
autorestart=true
startsecs=$P_STARTSECS
startretries=5
stopsignal=$P_STOPSIGNAL
stopwaitsecs=$P_STOPWAIT
stopasgroup=$([[ "$name" == postgres ]] && echo false || echo true)
killasgroup=true
redirect_stderr=true
stdout_logfile=$(quote_words "$P_LOG")
stdout_logfile_maxbytes=20MB
stdout_logfile_backups=5
EOF
            priority=$((priority + 10))
        done
    } >"$SUPERVISOR_CONF.tmp"
    mv "$SUPERVISOR_CONF.tmp" "$SUPERVISOR_CONF"
}

supervisor_up() {
    if supervisor_running; then
        ok "supervisord (pid $(cat "$RUN/supervisord.pid")) supervises the stack"
        return 0
    fi
    step "supervisord: the stack's own supervisor ($SUPERVISOR_CONF)"
    write_supervisor_conf
    # Counts are per supervisord: a fresh one starts from zero (restarts.log keeps the history).
    rm -rf "$COUNTS"
    make_dirs "$SERVICE_USER:$SERVICE_GROUP" 0750 "$COUNTS"
    # supervisord's own log is read by the crash-recorder, through the log folder's group.
    share_with_service "$LOGS"
    supervisord -c "$SUPERVISOR_CONF" >>"$LOGS/supervisord.log" 2>&1 \
        || fail_part "supervisord" "$LOGS/supervisord.log" "it refused to start"
    wait_for 30 "" sctl pid || fail_part "supervisord" "$LOGS/supervisord.log" "its socket $SUPERVISOR_SOCK did not answer within 30 s"
    ok "supervisord running (pid $(cat "$RUN/supervisord.pid")); restarts are logged in $RESTARTS_LOG"
}

supervisor_down() {
    supervisor_running || return 0
    local name pid i
    # Reverse start order: the viewer first, PostgreSQL last.
    for name in nginx adminer worker orthanc postgres; do
        if program_alive "$name"; then
            sctl stop "$name" >/dev/null 2>&1 || warn "supervisord could not stop $name cleanly"
            ok "$(part_name "$name") stopped"
        fi
    done
    pid="$(cat "$RUN/supervisord.pid")"
    sctl shutdown >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 600; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && die "supervisord (pid $pid) did not stop within 60 s. Fix: look at $LOGS/supervisord.log, then kill it."
    ok "supervisord stopped"
}

# A stack started before supervision (pid files, pg_ctl): stopped so that supervisord can take over.
legacy_down() {
    local part found=false
    for part in nginx worker orthanc; do
        if pid_alive "$RUN/$part.pid" && ! supervisor_running; then
            found=true
            stop_pid "$RUN/$part.pid" "$part (started without supervision)" 60
        fi
    done
    if ! external_pg && [[ -f "$PG_DATA/postmaster.pid" ]] && ! program_alive postgres \
        && as_pg "$(pg_bin)/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
        found=true
        as_pg "$(pg_bin)/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null && ok "PostgreSQL (started without supervision) stopped"
    fi
    $found && warn "parts started by an older make up (without supervision) were stopped"
    return 0
}

# Units for a site whose init is systemd: the same programs, restarted on failure, in order, under one target.
write_systemd_units() {
    require_plain_paths
    mkdir -p "$SYSTEMD_DIR"
    rm -f "$SYSTEMD_DIR"/orthancseg-*.service "$SYSTEMD_DIR"/orthancseg.target
    local name unit wants=() after env
    for name in $(programs); do
        program_spec "$name"
        unit="orthancseg-$name.service"
        {
            cat <<EOF
# Generated by orthanc-config/stack.sh for the stack in $STACK; see docs/operations.md ("Under systemd").
[Unit]
Description=OrthancSeg $P_DESC
PartOf=orthancseg.target
After=network.target${after:+ $after}
${after:+Wants=$after}
StartLimitIntervalSec=300
StartLimitBurst=10

[Service]
Type=simple
ExecStart=$(quote_words "${P_COMMAND[@]}" | sed 's/\$/$$/g')
WorkingDirectory=$(quote_words "$P_DIR")
EOF
            # Orthanc's PostgreSQL plugin never reconnects: each (re)start of PostgreSQL restarts a running Orthanc,
            # as supervisord's crash-recorder does ('+': with full privileges, not as User=postgres).
            [[ "$name" == postgres && "$ROLE" != segmentation ]] && printf 'ExecStartPost=+%s --no-block try-restart orthancseg-orthanc.service\n' "$(command -v systemctl || echo /usr/bin/systemctl)"
            [[ -n "$P_USER" ]] && printf 'User=%s\n' "$P_USER"
            ! is_root && printf 'User=%s\n' "$(id -un)"
            printf 'UMask=0027\n'

            if [[ -n "$P_ENV" ]]; then
                while IFS= read -r env; do
                    printf 'Environment="%s"\n' "$(printf '%s' "${env//%/%%}" | sed 's/\$/$$/g')"
                done <<<"$P_ENV"
            fi
            cat <<EOF
Restart=on-failure
RestartSec=2s
KillSignal=SIG$P_STOPSIGNAL
KillMode=mixed
TimeoutStopSec=${P_STOPWAIT}s
StandardOutput=journal
StandardError=journal
SyslogIdentifier=orthancseg-$name

[Install]
WantedBy=orthancseg.target
EOF
        } >"$SYSTEMD_DIR/$unit"
        wants+=("$unit")
        after="${after:+$after }$unit"
    done
    cat >"$SYSTEMD_DIR/orthancseg.target" <<EOF
# Generated by orthanc-config/stack.sh for the stack in $STACK; see docs/operations.md ("Under systemd").
[Unit]
Description=OrthancSeg stack ($STACK)
Wants=${wants[*]}

[Install]
WantedBy=multi-user.target
EOF
}

# ---------------------------------------------------------------------------------------------

modalities_count() { /usr/bin/python3 -c 'import json, sys; print(len(json.load(sys.stdin)["DicomModalities"]))' <"$ORTHANC_DIR/orthanc.json" 2>/dev/null || echo "?"; }

print_summary() {
    # The state folder as the user named it (a link when it is kept under /var/lib/orthancseg), relative when below here.
    local rel="${ORTHANCSEG_STACK_DIR:-$ORTHANCSEG_REPO/.stack}" host port query
    rel="${rel#"$PWD"/}"
    read -r host port query < <(pg_endpoint)
    cat <<EOF

${_bold}OrthancSeg is up.${_reset}
  OHIF viewer     http://127.0.0.1:$OHIF_PORT/
  Orthanc REST    http://127.0.0.1:$ORTHANC_HTTP_PORT/   user $ORTHANC_USER, password in $rel/secrets/orthanc-password
  Orthanc DICOM   port $ORTHANC_DICOM_PORT, AE title $ORTHANC_AET
  Worker gRPC     http://127.0.0.1:$WORKER_PORT   admin token in $rel/secrets/admin-token
  PostgreSQL      $host:$port   databases $PG_ORTHANC_DB, $PG_WORKER_DB; passwords in $rel/secrets/
  CLI             $rel/bin/orthancseg --help
  Logs            $rel/logs/   restarts and crashes in $rel/logs/restarts.log
  Supervisor      every part is restarted when it dies; make status shows each part's restarts
  Scanners        allowed to store over DICOM: $rel/modalities.json ($(modalities_count) declared)
  Adminer         http://127.0.0.1:$ADMINER_PORT/   user $PG_BROWSER_ROLE (read-only), password in $rel/secrets/pg-browser-password
Upload:  curl --netrc-file $rel/secrets/orthanc.netrc -X POST --data-binary @slice.dcm http://127.0.0.1:$ORTHANC_HTTP_PORT/instances
Stop:    make down
EOF
    print_places
}

# One side of two machines: what runs here, and the link.
print_link_summary() {
    local rel="${ORTHANCSEG_STACK_DIR:-$ORTHANCSEG_REPO/.stack}"
    rel="${rel#"$PWD"/}"
    printf '\n%sOrthancSeg (%s side) is up.%s\n' "$_bold" "$ROLE" "$_reset"
    if [[ "$ROLE" == pacs ]]; then
        cat <<EOF
  OHIF viewer     http://127.0.0.1:$OHIF_PORT/
  Orthanc REST    http://127.0.0.1:$ORTHANC_HTTP_PORT/ (loopback only)   user $ORTHANC_USER, password in $rel/secrets/orthanc-password
  Orthanc DICOM   port $ORTHANC_DICOM_PORT, AE title $ORTHANC_AET
  Link            https://$LISTEN:$LINK_ORTHANC_PORT/ for the worker's account $LINK_USER (read and upload only)
  Bridge          sends to the worker at $PEER:$WORKER_PORT over TLS (CA $LINK_DIR/link-ca.pem)
EOF
    else
        cat <<EOF
  Worker gRPC     http://127.0.0.1:$WORKER_PORT (loopback), https://$LISTEN:$WORKER_PORT (the link)   admin token in $rel/secrets/admin-token
  Orthanc         https://$PEER:$LINK_ORTHANC_PORT/ as $LINK_USER (CA $LINK_DIR/link-ca.pem)
  CLI             $rel/bin/orthancseg --help
  Datasets        ${ORTHANCSEG_NNUNET_RAW:-$DATA_DIR/nnUNet_raw}
EOF
    fi
    [[ -s "$LINK_BUNDLE" ]] && say "  Link bundle     $LINK_BUNDLE (for the other side: make up ROLE=$(peer_role) LISTEN=$PEER PEER=$LISTEN LINK=link-bundle.tar)"
    say "Status:  make status (shows the link)    Stop: make down"
}

# Remembers the ports of this stack for later `make status` / `make down` (read back by lib.sh).
write_ports() {
    printf '%s\n' "ORTHANCSEG_PG_PORT=$PG_PORT" "ORTHANCSEG_ORTHANC_HTTP_PORT=$ORTHANC_HTTP_PORT" \
        "ORTHANCSEG_ORTHANC_DICOM_PORT=$ORTHANC_DICOM_PORT" "ORTHANCSEG_OHIF_PORT=$OHIF_PORT" "ORTHANCSEG_WORKER_PORT=$WORKER_PORT" \
        "ORTHANCSEG_ADMINER_PORT=$ADMINER_PORT" "ORTHANCSEG_LINK_ORTHANC_PORT=$LINK_ORTHANC_PORT" \
        > "$STACK/ports.env"
}

cmd_up() {
    require_link_settings
    prepare_layout
    write_ports
    write_link_env
    link_prepare
    legacy_down
    supervisor_up
    pg_up
    write_service_secrets
    case "$ROLE" in
        pacs)
            orthanc_up
            ohif_up
            ;;
        segmentation)
            worker_up
            cli_install
            write_pgadmin_servers
            ;;
        *)
            orthanc_up
            worker_up
            cli_install
            adminer_up
            ohif_up
            write_pgadmin_servers
            ;;
    esac
    write_systemd_units
    if split_role; then print_link_summary; else print_summary; fi
}

cmd_down() {
    step "stopping the OrthancSeg stack"
    supervisor_down
    legacy_down
    external_pg && ok "PostgreSQL is external (ORTHANCSEG_PG_URL): left running"
    ok "stack stopped"
}

cmd_systemd_units() {
    prepare_layout
    write_systemd_units
    say "systemd units for the stack in $STACK written to $SYSTEMD_DIR:"
    ls "$SYSTEMD_DIR" | sed 's/^/  /'
    [[ -f "$ORTHANC_DIR/orthanc.json" && -f "$NGINX_DIR/nginx.conf" && -f "$APP_DIR/worker/orthancseg-worker.dll" ]] \
        || warn "they start what make up prepares (configuration, database roles, the built worker): run make up once first"
    cat <<EOF
To run the stack under systemd instead of make up (docs/operations.md, "Under systemd"):
  make down
  cp $SYSTEMD_DIR/* /etc/systemd/system/ && systemctl daemon-reload
  systemctl enable --now orthancseg.target
EOF
}

status_line() {
    local name="$1" state="$2" detail="$3" colour="$_red"
    [[ "$state" == running* ]] && colour="$_green"
    printf '  %-12s %s%-24s%s %s\n' "$name" "$colour" "$state" "$_reset" "$detail"
}

cmd_status() {
    local down=0 name state health detail info last
    say "OrthancSeg stack in $STACK"
    if external_pg; then
        if pg_ready; then state="running (external)"; else state="unreachable"; down=1; fi
        status_line PostgreSQL "$state" "ORTHANCSEG_PG_URL"
    fi
    if ! supervisor_running; then
        for name in $(programs); do
            status_line "$(part_name "$name")" stopped ""
        done
        say "supervisord is not running: make up starts it and every part."
        return 1
    fi
    for name in $(programs); do
        state="$(program_state "$name")"
        case "$name" in
            postgres) health=pg_ready detail="127.0.0.1:$PG_PORT" ;;
            orthanc) health=orthanc_healthy detail="http://127.0.0.1:$ORTHANC_HTTP_PORT/  DICOM $ORTHANC_DICOM_PORT" ;;
            worker) health=worker_healthy detail="http://127.0.0.1:$WORKER_PORT (gRPC)" ;;
            adminer) health=adminer_healthy detail="http://127.0.0.1:$ADMINER_PORT/ (database GUI)" ;;
            nginx) health=ohif_healthy detail="http://127.0.0.1:$OHIF_PORT/" ;;
        esac
        case "$state" in
            RUNNING)
                if $health >/dev/null 2>&1; then state="running"; else state="running, not answering"; down=1; fi
                info="pid $(program_pid "$name") as $(process_user "$name"), $({ sctl status "$name" 2>/dev/null || true; } | grep -o 'uptime [0-9:, a-z]*' | head -n 1 || true)" ;;
            # Within startsecs of a (re)start: already answering is running.
            STARTING)
                if $health >/dev/null 2>&1; then state="running"; else state="starting"; down=1; fi
                info="pid $(program_pid "$name") as $(process_user "$name"), just started" ;;
            BACKOFF) state="restarting (backoff)"; down=1; info="" ;;
            FATAL) state="failed: gave up"; down=1; info="make up tries again" ;;
            *) state="stopped"; down=1; info="" ;;
        esac
        status_line "$(part_name "$name")" "$state" "restarts $(restarts_of "$name")${info:+, $info}  $detail"
        if [[ -s "$COUNTS/$name.last" ]]; then
            last="$(cat "$COUNTS/$name.last")"
            printf '  %-12s last: %s\n' "" "$last"
        fi
    done
    link_status || down=1
    say "supervisord pid $(cat "$RUN/supervisord.pid") as $(ps -o user= -p "$(cat "$RUN/supervisord.pid")" 2>/dev/null || echo '?'); every restart with its reason (e.g. terminated by SIGSEGV): $RESTARTS_LOG"
    print_places
    return $down
}

# The user a running program's process runs as, as the system sees it.
process_user() {
    local pid
    pid="$(program_pid "$1")"
    ps -o user= -p "$pid" 2>/dev/null || echo '?'
}

# Where everything is: make status and make up print it.
print_places() {
    local link="${ORTHANCSEG_STACK_DIR:-$ORTHANCSEG_REPO/.stack}" where="$STACK"
    [[ -L "$link" ]] && where="$STACK (linked from $link)"
    cat <<EOF
Where:
  state folder    $where   owner $(stat -c %U:%G "$STACK" 2>/dev/null); nothing in it is open to other users
  services run as $SERVICE_USER (Orthanc, worker, nginx, php-fpm)$(external_pg || echo ", $PG_USER (PostgreSQL, data in $PG_HOME)")
  secrets         $SECRETS (root only); the services' copies in $SERVICE_SECRETS
  logs            $LOGS   (nginx and php-fpm: $WEB_LOGS)
EOF
    # What this side holds: on two machines, Orthanc's files are on the PACS side, the rest on the segmentation side.
    [[ "$ROLE" != segmentation ]] && say "  Orthanc files   $ORTHANC_DIR/storage"
    if [[ "$ROLE" != pacs ]]; then
        say "  datasets        ${ORTHANCSEG_NNUNET_RAW:-$DATA_DIR/nnUNet_raw}"
        say "  CLI             $STACK/bin/orthancseg   (address and admin token from this folder)"
        [[ "$ROLE" == all ]] && say "  Adminer         http://127.0.0.1:$ADMINER_PORT/   read-only user $PG_BROWSER_ROLE, password: cat $SECRETS/pg-browser-password"
        say "  pgAdmin         import $PGADMIN_SERVERS"
    fi
    split_role && say "  link            $LINK_DIR (CA and this side's certificate)$([[ -s "$LINK_BUNDLE" ]] && echo "; for the other side: $LINK_BUNDLE")"
    return 0
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    systemd-units) cmd_systemd_units ;;
    link-bundle) link_bundle_write ;;
    *) echo "usage: $0 up|down|status|systemd-units|link-bundle" >&2; exit 2 ;;
esac
