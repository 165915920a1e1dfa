#!/usr/bin/env bash
# Renders orthanc.json.template into one complete Orthanc configuration file. The stack and the
# integration tests both use this script, so what the tests start is what `make up` starts.
# One file, passed as Orthanc's only argument: no /etc/orthanc/*.json, so no key is defined twice.
#
# Usage: render-orthanc-config.sh OUTPUT KEY=VALUE...
# Keys: HTTP_PORT DICOM_PORT DICOM_AET STORAGE_DIR HTTP_USER HTTP_PASSWORD_FILE STABLE_AGE PYTHON_SCRIPT
#       PG_URI PG_PASSWORD_FILE WORKER_PORT BRIDGE_TOKEN_FILE MODALITIES_FILE. An empty PYTHON_SCRIPT leaves the
#       Python plugin idle. Passwords are read from files, never given here: arguments are visible to every user (ps).
#       PG_PASSWORD_FILE may be empty (PG_URI then connects without a password); its password goes into PG_URI.
#       MODALITIES_FILE (may be empty: none) is the operator's list of DICOM modalities allowed to store, Orthanc's
#       DicomModalities: a JSON object, lines starting with // are comments (docs/operations.md, "Adding a scanner").
# Optional keys for two machines (docs/deployment.md): LINK_USER with LINK_PASSWORD_FILE (the worker's own account,
#       which the bridge's filter lets read and upload only; it reaches Orthanc through nginx's TLS front,
#       render-link-proxy.sh, so Orthanc stays loopback-only), WORKER_HOST (the worker's address, default 127.0.0.1) and
#       WORKER_CA_FILE (the CA the worker's TLS certificate must chain to; the bridge then calls it over TLS).
set -euo pipefail
template="$(dirname "${BASH_SOURCE[0]}")/orthanc.json.template"
[[ $# -ge 1 ]] || { echo "usage: $0 OUTPUT KEY=VALUE..." >&2; exit 2; }
exec /usr/bin/python3 - "$template" "$@" <<'PY'
import json, os, re, sys, urllib.parse

template_path, output, *pairs = sys.argv[1:]
values = {}
for pair in pairs:
    key, sep, value = pair.partition("=")
    if not sep:
        sys.exit(f"render-orthanc-config: argument {pair!r} is not KEY=VALUE")
    values[key] = value

numeric = {"HTTP_PORT", "DICOM_PORT", "STABLE_AGE", "WORKER_PORT"}
for key in numeric:
    if key in values and not re.fullmatch(r"[0-9]+", values[key]):
        sys.exit(f"render-orthanc-config: {key} must be a whole number, got {values[key]!r}")

def read_secret(key):
    path = values.pop(key, "")
    if not path:
        return ""
    with open(path, encoding="utf-8") as f:
        return f.read().strip()

values["HTTP_PASSWORD"] = read_secret("HTTP_PASSWORD_FILE")
if not values["HTTP_PASSWORD"]:
    sys.exit("render-orthanc-config: HTTP_PASSWORD_FILE must name a file holding Orthanc's password")
pg_password = read_secret("PG_PASSWORD_FILE")
if pg_password and "PG_URI" in values:
    url = urllib.parse.urlsplit(values["PG_URI"])
    if url.password is not None or not url.username:
        sys.exit("render-orthanc-config: with PG_PASSWORD_FILE, PG_URI must name a user and no password")
    userinfo = urllib.parse.quote(urllib.parse.unquote(url.username), safe="") + ":" + urllib.parse.quote(pg_password, safe="")
    values["PG_URI"] = urllib.parse.urlunsplit(url._replace(netloc=userinfo + "@" + url.netloc.rpartition("@")[2]))

optional = {key: values.pop(key, "") for key in ("LINK_USER", "LINK_PASSWORD_FILE", "WORKER_HOST", "WORKER_CA_FILE")}
for key in ("LINK_PASSWORD_FILE", "WORKER_CA_FILE"):
    if optional[key] and not os.path.isabs(optional[key]):
        sys.exit(f"render-orthanc-config: {key} must be an absolute path, got {optional[key]!r}")
if bool(optional["LINK_USER"]) != bool(optional["LINK_PASSWORD_FILE"]):
    sys.exit("render-orthanc-config: LINK_USER and LINK_PASSWORD_FILE go together (the worker's account and its password)")
if optional["WORKER_HOST"] and not re.fullmatch(r"[A-Za-z0-9.:\[\]-]+", optional["WORKER_HOST"]):
    sys.exit(f"render-orthanc-config: WORKER_HOST must be an address or host name, got {optional['WORKER_HOST']!r}")
values["LINK_PASSWORD_FILE"] = optional["LINK_PASSWORD_FILE"]
values["LINK_PASSWORD"] = read_secret("LINK_PASSWORD_FILE")
if optional["LINK_USER"] and not values["LINK_PASSWORD"]:
    sys.exit("render-orthanc-config: LINK_PASSWORD_FILE holds no password")

modalities = {}
modalities_file = values.pop("MODALITIES_FILE", "")
if modalities_file:
    with open(modalities_file, encoding="utf-8") as f:
        source = "".join(line for line in f if not line.lstrip().startswith("//"))
    try:
        modalities = json.loads(source) if source.strip() else {}
    except json.JSONDecodeError as e:
        sys.exit(f"render-orthanc-config: {modalities_file} is not valid JSON: {e}")
    if not isinstance(modalities, dict):
        sys.exit(f"render-orthanc-config: {modalities_file} must hold one JSON object of modalities")
    for name, modality in modalities.items():
        if isinstance(modality, list) and len(modality) >= 3:
            aet, host, port = modality[:3]
        elif isinstance(modality, dict):
            aet, host, port = modality.get("AET"), modality.get("Host"), modality.get("Port")
        else:
            sys.exit(f"render-orthanc-config: modality {name!r} in {modalities_file} must be [\"AET\", \"host\", port] or {{\"AET\", \"Host\", \"Port\"}}")
        if not isinstance(aet, str) or not re.fullmatch(r"[ -~]{1,16}", aet) or aet != aet.strip():
            sys.exit(f"render-orthanc-config: modality {name!r} in {modalities_file}: the AE title must be 1 to 16 printable characters")
        if not isinstance(host, str) or not host:
            sys.exit(f"render-orthanc-config: modality {name!r} in {modalities_file}: the host (the scanner's address) is missing")
        if not isinstance(port, int) or not 0 < port < 65536:
            sys.exit(f"render-orthanc-config: modality {name!r} in {modalities_file}: the port must be a number from 1 to 65535")

with open(template_path, encoding="utf-8") as f:
    text = f.read()

def substitute(match):
    key = match.group(1)
    if key not in values:
        sys.exit(f"render-orthanc-config: no value given for {key}")
    # Inside a JSON string: escape, so a path or password can never break the document.
    return values[key] if key in numeric else json.dumps(values[key])[1:-1]

config = json.loads(re.sub(r"\{\{([A-Z_]+)\}\}", substitute, text))
config["DicomModalities"] = modalities
if optional["LINK_USER"]:
    if optional["LINK_USER"] in config["RegisteredUsers"]:
        sys.exit("render-orthanc-config: LINK_USER must differ from HTTP_USER, the administrator")
    config["RegisteredUsers"][optional["LINK_USER"]] = values["LINK_PASSWORD"]
    config["OrthancSegBridge"]["ReadUploadUsers"] = [optional["LINK_USER"]]
if optional["WORKER_HOST"]:
    config["OrthancSegBridge"]["WorkerAddress"] = f"{optional['WORKER_HOST']}:{values['WORKER_PORT']}"
if optional["WORKER_CA_FILE"]:
    config["OrthancSegBridge"]["CaFile"] = optional["WORKER_CA_FILE"]
if not config.get("PythonScript"):
    config.pop("PythonScript", None)
elif not os.path.isabs(config["PythonScript"]) or not config["PythonScript"].endswith(".py"):
    sys.exit("render-orthanc-config: PYTHON_SCRIPT must be an absolute path to a .py file")

# Passwords inside: readable by the owner only.
fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w", encoding="utf-8") as f:
    json.dump(config, f, indent=2)
    f.write("\n")
os.chmod(output, 0o600)
PY
