#!/usr/bin/env bash
# `make test`: installs what is missing, builds, runs every test runner, and ends with exactly one
# summary line "N passed, N failed[, N skipped]" totalled over all of them. Exit 1 if anything failed.
# Tests start their own throwaway PostgreSQL, Orthanc, nginx and worker, never the stack's.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$PWD"
results="$repo/artifacts/test-results"
rm -rf "$results"
mkdir -p "$results"
runner_failures=0

section() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
broken() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; runner_failures=$((runner_failures + 1)); }

summary_and_exit() {
    /usr/bin/python3 - "$results" "$runner_failures" <<'PY'
import glob, os, sys
import xml.etree.ElementTree as ET

results, runner_failures = sys.argv[1], int(sys.argv[2])
passed = failed = skipped = 0
failures = []  # (test name, first lines of its message), printed just above the summary line


def first_lines(text, count=6):
    lines = [line.rstrip() for line in (text or "").strip().splitlines() if line.strip()]
    return lines[:count]


for path in sorted(glob.glob(os.path.join(results, "*.trx"))):
    tree = ET.parse(path)
    for result in tree.iter():
        if result.tag.endswith("UnitTestResult") and result.get("outcome") in ("Failed", "Error", "Timeout", "Aborted"):
            message = next((e.text for e in result.iter() if e.tag.endswith("Message")), "")
            stack = next((e.text for e in result.iter() if e.tag.endswith("StackTrace")), "")
            failures.append((result.get("testName", "?"), first_lines(message) + first_lines(stack, 3)))
    counters = next((e for e in tree.iter() if e.tag.endswith("Counters")), None)
    if counters is None:
        runner_failures += 1
        continue
    total = int(counters.get("total", 0))
    executed = int(counters.get("executed", total))
    passed += int(counters.get("passed", 0))
    failed += int(counters.get("failed", 0)) + int(counters.get("error", 0)) + int(counters.get("timeout", 0)) + int(counters.get("aborted", 0))
    skipped += total - executed
for path in sorted(glob.glob(os.path.join(results, "*.junit.xml"))):
    root = ET.parse(path).getroot()
    for suite in ([root] if root.tag == "testsuite" else root.iter("testsuite")):
        tests = int(suite.get("tests", 0))
        bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skip = int(suite.get("skipped", 0))
        passed += tests - bad - skip
        failed += bad
        skipped += skip
        for case in suite.iter("testcase"):
            for problem in list(case.findall("failure")) + list(case.findall("error")):
                name = f"{case.get('classname', '')}.{case.get('name', '')}"
                failures.append((name, first_lines(problem.get("message", "")) + first_lines(problem.text, 3)))
# A runner that broke before reporting (build error, crash) counts as one failure.
failed += runner_failures
for name, lines in failures:
    print(f"FAILED {name}")
    for text in lines:
        print(f"    {text[:300]}")
line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed else 0)
PY
    exit $?
}

section "dependencies"
if ! orthanc-config/install-deps.sh test; then
    broken "installing the dependencies failed (see above)"
    summary_and_exit
fi

section "build"
if ! dotnet build OrthancSeg.sln -c Release --nologo -v quiet; then
    broken "the solution does not build"
    summary_and_exit
fi

if [[ -x plugin-bridge/generate.sh ]]; then
    section "bridge protobuf modules"
    plugin-bridge/generate.sh || broken "plugin-bridge/generate.sh failed"
fi

section "OHIF viewer and browser driver for the end-to-end test"
orthanc-config/install-ohif.sh || broken "installing OHIF failed"
if [[ -f tests/e2e/package-lock.json ]]; then
    (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error) || broken "npm ci in tests/e2e failed"
fi
# The independent gRPC client (Node, reflection) that tests/OrthancSeg.IntegrationTests/Auth drives.
(cd tests/grpc-client && npm ci --no-audit --no-fund --loglevel=error) || broken "npm ci in tests/grpc-client failed"

for project in tests/*/*.csproj; do
    name="$(basename "$project" .csproj)"
    section "dotnet test $name"
    if ! dotnet test "$project" -c Release --no-build --nologo \
        --logger "trx;LogFileName=$name.trx" --logger "console;verbosity=normal" --results-directory "$results"; then
        # Failing tests are counted from the trx; a run without one broke before reporting.
        [[ -f "$results/$name.trx" ]] || broken "dotnet test $name produced no results"
    fi
done

if [[ -d plugin-bridge/tests ]]; then
    section "pytest plugin-bridge/tests"
    /usr/bin/python3 -m pytest plugin-bridge/tests -q -p no:cacheprovider --junitxml="$results/bridge.junit.xml"
    [[ -f "$results/bridge.junit.xml" ]] || broken "pytest produced no results"
fi

section "pytest tests/nnunet-standin"
/usr/bin/python3 -m pytest tests/nnunet-standin -q -p no:cacheprovider --junitxml="$results/nnunet-standin.junit.xml"
[[ -f "$results/nnunet-standin.junit.xml" ]] || broken "pytest of the nnU-Net stand-ins produced no results"

section "summary (details in artifacts/test-results/)"
summary_and_exit
