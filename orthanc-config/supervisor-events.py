#!/usr/bin/python3
"""Counts and logs the stack's restarts: a supervisord event listener (stack.sh writes its [eventlistener]).

supervisord restarts a part that dies but keeps no count, and the exit reason ("terminated by SIGSEGV")
is only written to its own log. For every PROCESS_STATE_EXITED (a running part ended without being
asked), PROCESS_STATE_BACKOFF (it ended while starting) and PROCESS_STATE_FATAL (supervisord gave up)
event this listener:

- writes one line on its stderr, which supervisord keeps as the restarts log (restarts.log, rotated by
  supervisord like every log it writes): time, part, what happened, supervisord's reason and pid;
- adds one to COUNTS/<part> (a whole number in a file) and writes the line to COUNTS/<part>.last,
  which `make status` shows. stack.sh empties COUNTS when it starts supervisord.

The listener runs as the stack's service user, not root: it writes only in COUNTS and in the folders of
the logs it rotates, and reads supervisord's log through the log folder's group.

The reason is the newest "exited: <part> (...)" line of supervisord's log, which supervisord writes
(and flushes) before it hands the event to any listener. Stopping a part (make down, supervisorctl
stop) is not an exit: supervisord reports it as STOPPED, which this listener does not subscribe to.

A part may need restarting when another one died: Orthanc's PostgreSQL plugin (4.0) never reconnects
once its database went away, and answers 503 until it is restarted. Each DEPENDENCY:DEPENDENT argument
makes the listener restart DEPENDENT (through supervisord's XML-RPC socket) when a running DEPENDENCY
exited; the restart is logged and counted like the others. DEPENDENT waits for its dependency itself
(Orthanc retries its database connection for 20 s, and is restarted again if that is not enough).

Logs that a part writes itself (nginx's and php-fpm's, which supervisord does not see) are rotated here by
size: on supervisord's TICK_60 event, each PROGRAM=FILE argument whose FILE is past 20 MB is moved to
FILE.1 (FILE.1 to FILE.2, ... 5 kept, as supervisord keeps them) and PROGRAM is sent SIGUSR1, on which
nginx and php-fpm reopen their logs.

Usage: supervisor-events.py SUPERVISORD_LOG COUNTS_DIR [DEPENDENCY:DEPENDENT...] [PROGRAM=FILE...]
"""

import datetime
import os
import re
import sys
import xmlrpc.client

from supervisor import childutils

TAIL_BYTES = 64 * 1024
# The parts' own logs are rotated as supervisord rotates the logs it writes (stdout_logfile_maxbytes, _backups).
ROTATE_BYTES = 20 * 1024 * 1024
ROTATE_BACKUPS = 5


def parse_fields(text: str) -> dict[str, str]:
    return dict(token.split(":", 1) for token in text.split() if ":" in token)


def exit_reason(supervisord_log: str, name: str) -> str:
    """The newest reason supervisord logged for an exit of NAME, e.g. 'terminated by SIGKILL; not expected'."""
    try:
        with open(supervisord_log, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - TAIL_BYTES))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return "reason not found (supervisord's log unreadable)"
    found = re.findall(r"exited: " + re.escape(name) + r" \((.*)\)\s*$", tail, re.MULTILINE)
    return found[-1] if found else "reason not found in supervisord's log"


def write_atomically(path: str, text: str) -> None:
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(temporary, path)


def record(line: str, name: str, counts: str, count: bool) -> None:
    print(line, file=sys.stderr, flush=True)
    os.makedirs(counts, exist_ok=True)
    counter = os.path.join(counts, name)
    if count:
        try:
            with open(counter, encoding="utf-8") as f:
                current = int(f.read().strip() or 0)
        except (OSError, ValueError):
            current = 0
        write_atomically(counter, f"{current + 1}\n")
    write_atomically(counter + ".last", line + "\n")


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def restart_dependent(dependency: str, dependent: str, counts: str) -> None:
    rpc = childutils.getRPCInterface(os.environ)
    state = rpc.supervisor.getProcessInfo(dependent)["statename"]
    if state not in ("RUNNING", "STARTING", "BACKOFF"):
        return
    if state != "BACKOFF":
        rpc.supervisor.stopProcess(dependent, True)
    rpc.supervisor.startProcess(dependent, False)
    line = f"{now()} {dependent} restarted because {dependency} exited (its connections to {dependency} do not come back by themselves)"
    record(line, dependent, counts, count=True)


def rotate(logs: list[tuple[str, str]]) -> None:
    """Moves each part's own log past ROTATE_BYTES aside and asks the part (SIGUSR1) to reopen it."""
    reopen = set()
    for program, path in logs:
        try:
            if os.path.getsize(path) <= ROTATE_BYTES:
                continue
        except OSError:
            continue
        for n in range(ROTATE_BACKUPS - 1, 0, -1):
            if os.path.exists(f"{path}.{n}"):
                os.replace(f"{path}.{n}", f"{path}.{n + 1}")
        os.replace(path, path + ".1")
        reopen.add(program)
    if reopen:
        rpc = childutils.getRPCInterface(os.environ)
        for program in sorted(reopen):
            if rpc.supervisor.getProcessInfo(program)["statename"] == "RUNNING":
                rpc.supervisor.signalProcess(program, "USR1")


def handle(event: str, payload: str, supervisord_log: str, counts: str,
           dependents: dict[str, list[str]], logs: list[tuple[str, str]]) -> None:
    if event == "TICK_60":
        rotate(logs)
        return
    fields = parse_fields(payload)
    name = fields.get("processname", "?")
    now_text = now()
    if event == "PROCESS_STATE_FATAL":
        line = f"{now_text} {name} gave up: it kept exiting while starting; run make up to try again"
        record(line, name, counts, count=False)
        return
    reason = exit_reason(supervisord_log, name)
    if event == "PROCESS_STATE_EXITED":
        line = f"{now_text} {name} exited ({reason}), pid {fields.get('pid', '?')}: restarted"
    else:
        line = f"{now_text} {name} exited while starting ({reason}): restarting after a delay"
    record(line, name, counts, count=True)
    if event == "PROCESS_STATE_EXITED":
        for dependent in dependents.get(name, []):
            restart_dependent(name, dependent, counts)


def main() -> None:
    supervisord_log, counts = sys.argv[1:3]
    dependents: dict[str, list[str]] = {}
    logs: list[tuple[str, str]] = []
    for argument in sys.argv[3:]:
        if "=" in argument:
            program, _, path = argument.partition("=")
            logs.append((program, path))
        else:
            dependency, _, dependent = argument.partition(":")
            dependents.setdefault(dependency, []).append(dependent)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        stdout.write(b"READY\n")
        stdout.flush()
        header = stdin.readline()
        if not header:
            return
        fields = parse_fields(header.decode("utf-8", "replace"))
        payload = stdin.read(int(fields.get("len", "0"))).decode("utf-8", "replace")
        try:
            handle(fields.get("eventname", ""), payload, supervisord_log, counts, dependents, logs)
        except (OSError, xmlrpc.client.Error) as error:
            # A full disk must not take the listener down with it: supervisord would stop sending it events.
            print(f"could not record {fields.get('eventname')} {payload!r}: {error}", file=sys.stderr, flush=True)
        stdout.write(b"RESULT 2\nOK")
        stdout.flush()


if __name__ == "__main__":
    main()
