#!/usr/bin/env bash
# Renders orthanc.json.template into one complete Orthanc configuration file. The stack and the
# integration tests both use this script, so what the tests start is what `make up` starts.
# One file, passed as Orthanc's only argument: no /etc/orthanc/*.json, so no key is defined twice.
#
# Usage: render-orthanc-config.sh OUTPUT KEY=VALUE...
# Keys: HTTP_PORT DICOM_PORT DICOM_AET STORAGE_DIR HTTP_USER HTTP_PASSWORD STABLE_AGE PYTHON_SCRIPT
#       PG_URI WORKER_PORT BRIDGE_TOKEN_FILE. An empty PYTHON_SCRIPT leaves the Python plugin idle.
set -euo pipefail
template="$(dirname "${BASH_SOURCE[0]}")/orthanc.json.template"
[[ $# -ge 1 ]] || { echo "usage: $0 OUTPUT KEY=VALUE..." >&2; exit 2; }
exec /usr/bin/python3 - "$template" "$@" <<'PY'
import json, os, re, sys

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

with open(template_path, encoding="utf-8") as f:
    text = f.read()

def substitute(match):
    key = match.group(1)
    if key not in values:
        sys.exit(f"render-orthanc-config: no value given for {key}")
    # Inside a JSON string: escape, so a path or password can never break the document.
    return values[key] if key in numeric else json.dumps(values[key])[1:-1]

config = json.loads(re.sub(r"\{\{([A-Z_]+)\}\}", substitute, text))
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
