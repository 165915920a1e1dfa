"""The bridge against a fake `orthanc` module and a real gRPC server in this process."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import grpc
import pytest

from conftest import (CT_SOP_CLASS, LABELMAP_SEG_SOP_CLASS, SEG_SOP_CLASS, TOKEN, BRIDGE_SCRIPT,
                      EventsServer, FakeOrthanc, bridge_section, free_port, load_bridge,
                      wait_until)

RunBridge = Callable[..., Any]


def orthanc_id(n: int) -> str:
    digits = "%040x" % n
    return "-".join(digits[i:i + 8] for i in range(0, 40, 8))


SERIES_1, SERIES_2, SERIES_3, SERIES_4 = (orthanc_id(n) for n in (1, 2, 3, 4))
INSTANCE = orthanc_id(100)


def sender_threads(bridge: Any) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == bridge.SENDER_THREAD_NAME]


def unreachable_address() -> str:
    return "127.0.0.1:%d" % free_port()


def test_stable_series_is_forwarded_with_the_bearer_token(
        fake_orthanc: FakeOrthanc, events_server: EventsServer, run_bridge: RunBridge) -> None:
    run_bridge(events_server.address)

    fake_orthanc.stable_series(SERIES_1)

    [call] = events_server.wait_for(1)
    assert call.method == "NotifyStableSeries"
    assert call.request.orthanc_series_id == SERIES_1
    assert call.request.change_seq == 0  # unknown: the on-change callback does not carry it
    assert call.authorization == "Bearer " + TOKEN


def test_instance_that_is_not_a_segmentation_is_not_forwarded(
        fake_orthanc: FakeOrthanc, events_server: EventsServer, run_bridge: RunBridge) -> None:
    run_bridge(events_server.address)

    fake_orthanc.new_instance(INSTANCE, CT_SOP_CLASS)
    fake_orthanc.stable_series(SERIES_1)  # sent after the instance was judged: one sender, FIFO

    events_server.wait_for(1)
    assert events_server.ids() == [SERIES_1]
    assert len(events_server.attempts) == 1
    assert "/instances/%s/metadata/SopClassUid" % INSTANCE in fake_orthanc.rest_calls


@pytest.mark.parametrize("sop_class_uid", [SEG_SOP_CLASS, LABELMAP_SEG_SOP_CLASS])
def test_segmentation_instance_is_forwarded_with_its_sop_class(
        sop_class_uid: str, fake_orthanc: FakeOrthanc, events_server: EventsServer,
        run_bridge: RunBridge) -> None:
    run_bridge(events_server.address)

    fake_orthanc.new_instance(INSTANCE, sop_class_uid)

    [call] = events_server.wait_for(1)
    assert call.method == "NotifySegmentationStored"
    assert call.request.orthanc_instance_id == INSTANCE
    assert call.request.sop_class_uid == sop_class_uid
    assert call.authorization == "Bearer " + TOKEN


def test_segmentation_check_runs_in_the_sender_not_in_the_callback(
        fake_orthanc: FakeOrthanc, events_server: EventsServer, run_bridge: RunBridge) -> None:
    run_bridge(events_server.address, start=False)

    fake_orthanc.new_instance(INSTANCE, SEG_SOP_CLASS)
    assert fake_orthanc.rest_calls == []  # Orthanc's REST API is not ready before ORTHANC_STARTED

    fake_orthanc.started()
    [call] = events_server.wait_for(1)
    assert call.request.orthanc_instance_id == INSTANCE


def test_instance_deleted_before_its_check_is_skipped_and_the_next_change_is_sent(
        fake_orthanc: FakeOrthanc, events_server: EventsServer, run_bridge: RunBridge) -> None:
    run_bridge(events_server.address)

    fake_orthanc.new_instance(INSTANCE)  # unknown to the fake Orthanc: RestApiGet raises
    fake_orthanc.stable_series(SERIES_1)

    events_server.wait_for(1)
    assert events_server.ids() == [SERIES_1]
    assert any(INSTANCE in message for message in fake_orthanc.messages("warning"))


def test_change_made_while_the_worker_is_down_is_delivered_when_it_comes_up(
        fake_orthanc: FakeOrthanc, run_bridge: RunBridge) -> None:
    port = free_port()
    run_bridge("127.0.0.1:%d" % port)

    fake_orthanc.stable_series(SERIES_1)
    wait_until(lambda: fake_orthanc.messages("warning"), 10, "the first failed attempt")

    server = EventsServer(port).start()
    try:
        [call] = server.wait_for(1, timeout=15)
        assert call.request.orthanc_series_id == SERIES_1
    finally:
        server.stop()


def test_invalid_argument_drops_the_change_logs_it_and_the_next_change_is_sent(
        fake_orthanc: FakeOrthanc, events_server: EventsServer, run_bridge: RunBridge) -> None:
    run_bridge(events_server.address)
    events_server.fail_next(grpc.StatusCode.INVALID_ARGUMENT)

    fake_orthanc.stable_series(SERIES_1)
    fake_orthanc.stable_series(SERIES_2)

    events_server.wait_for(1)
    assert events_server.ids() == [SERIES_2]
    assert len(events_server.attempts) == 2  # INVALID_ARGUMENT is not retried
    assert any(SERIES_1 in message and "INVALID_ARGUMENT" in message
               for message in fake_orthanc.messages("error"))


def test_internal_error_is_retried_until_the_worker_accepts(
        fake_orthanc: FakeOrthanc, events_server: EventsServer, run_bridge: RunBridge) -> None:
    run_bridge(events_server.address)
    events_server.fail_next(grpc.StatusCode.INTERNAL, grpc.StatusCode.RESOURCE_EXHAUSTED)

    fake_orthanc.stable_series(SERIES_1)

    events_server.wait_for(1)
    assert events_server.ids() == [SERIES_1]
    assert len(events_server.attempts) == 3


def test_change_the_worker_keeps_failing_is_given_up_so_later_changes_still_flow(
        fake_orthanc: FakeOrthanc, events_server: EventsServer, run_bridge: RunBridge) -> None:
    bridge = run_bridge(events_server.address)
    bridge.MAX_ATTEMPTS_UNLESS_UNAVAILABLE = 3  # the default 10 takes about a minute of backoff
    events_server.fail_next(*[grpc.StatusCode.INTERNAL] * 3)

    fake_orthanc.stable_series(SERIES_1)
    fake_orthanc.stable_series(SERIES_2)

    events_server.wait_for(1)
    assert events_server.ids() == [SERIES_2]
    assert len(events_server.attempts) == 4
    assert any(SERIES_1 in message for message in fake_orthanc.messages("error"))


def test_unauthenticated_rereads_the_token_file_so_a_rotated_token_works(
        fake_orthanc: FakeOrthanc, token_file: Path, run_bridge: RunBridge) -> None:
    server = EventsServer(token="rotated-token").start()
    try:
        run_bridge(server.address)
        token_file.write_text("rotated-token\n")  # rotated after Orthanc read the old one

        fake_orthanc.stable_series(SERIES_1)

        [call] = server.wait_for(1)
        assert call.authorization == "Bearer rotated-token"
        assert len(server.attempts) == 2
    finally:
        server.stop()


def test_wrong_token_drops_the_change_after_one_reread_and_a_fixed_file_is_picked_up(
        fake_orthanc: FakeOrthanc, token_file: Path, run_bridge: RunBridge) -> None:
    server = EventsServer(token="the-worker-token").start()
    try:
        run_bridge(server.address)

        fake_orthanc.stable_series(SERIES_1)
        wait_until(lambda: fake_orthanc.messages("error"), 10, "the refused change to be logged")
        assert len(server.attempts) == 2  # the first try and one after re-reading the file
        assert any("TokenFile" in message for message in fake_orthanc.messages("error"))

        token_file.write_text("the-worker-token")
        fake_orthanc.stable_series(SERIES_2)

        server.wait_for(1)
        assert server.ids() == [SERIES_2]
    finally:
        server.stop()


def test_full_queue_drops_the_change_with_a_warning_and_keeps_the_queued_ones(
        fake_orthanc: FakeOrthanc, events_server: EventsServer, run_bridge: RunBridge) -> None:
    run_bridge(events_server.address, start=False, QueueSize=2)

    fake_orthanc.stable_series(SERIES_1)
    fake_orthanc.stable_series(SERIES_2)
    started = time.monotonic()
    fake_orthanc.stable_series(SERIES_3)
    assert time.monotonic() - started < 0.1
    assert any(SERIES_3 in message and "QueueSize" in message
               for message in fake_orthanc.messages("warning"))

    fake_orthanc.started()
    fake_orthanc.stable_series(SERIES_4)

    events_server.wait_for(3)
    assert events_server.ids() == [SERIES_1, SERIES_2, SERIES_4]


def test_burst_of_ten_thousand_changes_with_the_worker_unreachable_never_blocks_orthanc(
        fake_orthanc: FakeOrthanc, run_bridge: RunBridge) -> None:
    run_bridge(unreachable_address(), CallTimeoutSeconds=30)
    fake_orthanc.stable_series(SERIES_1)
    wait_until(lambda: fake_orthanc.messages("warning"), 10, "the worker to be found unreachable")

    slowest = 0.0
    started = time.monotonic()
    for n in range(10_000):
        call_started = time.monotonic()
        if n % 2:
            fake_orthanc.stable_series(orthanc_id(1000 + n))
        else:
            fake_orthanc.new_instance(orthanc_id(1000 + n), SEG_SOP_CLASS)
        slowest = max(slowest, time.monotonic() - call_started)
    total = time.monotonic() - started

    # A blocking send would cost at least a connection attempt (about 1 ms) per change.
    assert total < 3.0, "10,000 callbacks took %.2f s" % total
    assert slowest < 0.5, "the slowest callback took %.3f s" % slowest


def test_orthanc_stopped_stops_and_joins_the_sender_while_it_backs_off(
        fake_orthanc: FakeOrthanc, run_bridge: RunBridge) -> None:
    bridge = run_bridge(unreachable_address())
    fake_orthanc.stable_series(SERIES_1)
    wait_until(lambda: fake_orthanc.messages("warning"), 10, "the worker to be found unreachable")
    [thread] = sender_threads(bridge)
    assert thread.daemon  # a non-daemon thread would hang Py_Finalize at Orthanc's shutdown

    started = time.monotonic()
    fake_orthanc.stopped()

    assert time.monotonic() - started < bridge.STOP_JOIN_TIMEOUT_SECONDS
    assert not thread.is_alive()


def test_orthanc_stopped_cancels_a_call_the_worker_does_not_answer(
        fake_orthanc: FakeOrthanc, events_server: EventsServer, run_bridge: RunBridge) -> None:
    events_server.hang.set()
    bridge = run_bridge(events_server.address, CallTimeoutSeconds=60)
    fake_orthanc.stable_series(SERIES_1)
    wait_until(lambda: events_server.attempts, 10, "the call to reach the server")
    [thread] = sender_threads(bridge)

    started = time.monotonic()
    fake_orthanc.stopped()

    # Well under both the call's 60 s deadline and the join timeout: closing the channel
    # cancelled the call.
    assert time.monotonic() - started < 2.0
    assert not thread.is_alive()


@pytest.mark.parametrize("section, named", [
    (None, "OrthancSegBridge"),
    ("not an object", "OrthancSegBridge"),
    ({"QueueSize": "many"}, "OrthancSegBridge.QueueSize"),
    ({"QueueSize": 0}, "OrthancSegBridge.QueueSize"),
    ({"CallTimeoutSeconds": -1}, "OrthancSegBridge.CallTimeoutSeconds"),
    ({"WorkerAddress": ""}, "OrthancSegBridge.WorkerAddress"),
    ({"TokenFile": "relative/bridge-token"}, "OrthancSegBridge.TokenFile"),
    ({"TokenFile": "/nonexistent/bridge-token"}, "/nonexistent/bridge-token"),
])
def test_unusable_configuration_leaves_the_bridge_idle_with_an_error_naming_the_key(
        section: Any, named: str, fake_orthanc: FakeOrthanc, token_file: Path) -> None:
    if isinstance(section, dict):
        section = {**bridge_section("127.0.0.1:50051", token_file), **section}
    fake_orthanc.configuration = {} if section is None else {"OrthancSegBridge": section}

    load_bridge()  # must not raise: an exception at import would stop Orthanc from starting

    assert fake_orthanc.callbacks == []
    [error] = fake_orthanc.messages("error")
    assert error.startswith("OrthancSeg: ") and named in error


def test_empty_token_file_leaves_the_bridge_idle_with_an_error(
        fake_orthanc: FakeOrthanc, token_file: Path) -> None:
    token_file.write_text("\n")
    fake_orthanc.configuration = {"OrthancSegBridge": bridge_section("127.0.0.1:1", token_file)}

    load_bridge()

    assert fake_orthanc.callbacks == []
    [error] = fake_orthanc.messages("error")
    assert str(token_file) in error


def test_missing_generated_modules_leave_the_bridge_idle_telling_to_run_generate_sh(
        fake_orthanc: FakeOrthanc, token_file: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A checkout where generate.sh never ran: the script alone, no generated/ beside it.
    script = tmp_path / "checkout" / "plugin-bridge" / BRIDGE_SCRIPT.name
    script.parent.mkdir(parents=True)
    shutil.copy(BRIDGE_SCRIPT, script)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if not p.endswith("generated")])
    for name in [n for n in sys.modules if n == "orthancseg" or n.startswith("orthancseg.")]:
        monkeypatch.delitem(sys.modules, name)
    fake_orthanc.configuration = {"OrthancSegBridge": bridge_section("127.0.0.1:1", token_file)}

    load_bridge(script)

    assert fake_orthanc.callbacks == []
    [error] = fake_orthanc.messages("error")
    assert "plugin-bridge/generate.sh" in error


# ---- two machines: TLS to the worker, the worker's read-and-upload Orthanc account -------------

LINK_CERTS = BRIDGE_SCRIPT.parent.parent / "orthanc-config" / "link-certs.sh"


@pytest.fixture
def link_pki(tmp_path: Path) -> Path:
    """The stack's own private CA and a worker certificate for 127.0.0.1 (orthanc-config/link-certs.sh)."""
    pki = tmp_path / "pki"
    subprocess.run([str(LINK_CERTS), "ca", str(pki)], check=True, capture_output=True)
    subprocess.run([str(LINK_CERTS), "cert", str(pki), "worker-link", "127.0.0.1"], check=True,
                   capture_output=True)
    return pki


@pytest.fixture
def tls_events_server(link_pki: Path) -> Iterator[EventsServer]:
    server = EventsServer(tls=((link_pki / "worker-link.key").read_bytes(),
                               (link_pki / "worker-link.pem").read_bytes())).start()
    yield server
    server.stop()


def test_with_ca_file_the_change_reaches_a_worker_serving_tls_signed_by_that_ca(
        fake_orthanc: FakeOrthanc, tls_events_server: EventsServer, link_pki: Path,
        run_bridge: RunBridge) -> None:
    run_bridge(tls_events_server.address, CaFile=str(link_pki / "link-ca.pem"))

    fake_orthanc.stable_series(SERIES_1)

    [call] = tls_events_server.wait_for(1)
    assert call.request.orthanc_series_id == SERIES_1
    assert call.authorization == "Bearer " + TOKEN


def test_a_worker_certificate_from_another_ca_is_refused_and_nothing_is_sent(
        fake_orthanc: FakeOrthanc, tls_events_server: EventsServer, tmp_path: Path,
        run_bridge: RunBridge) -> None:
    other = tmp_path / "other-pki"
    subprocess.run([str(LINK_CERTS), "ca", str(other)], check=True, capture_output=True)
    run_bridge(tls_events_server.address, CaFile=str(other / "link-ca.pem"))

    fake_orthanc.stable_series(SERIES_1)

    time.sleep(3)
    assert tls_events_server.attempts == []


def test_without_ca_file_plain_http2_to_a_tls_worker_delivers_nothing(
        fake_orthanc: FakeOrthanc, tls_events_server: EventsServer, run_bridge: RunBridge) -> None:
    run_bridge(tls_events_server.address)

    fake_orthanc.stable_series(SERIES_1)

    time.sleep(3)
    assert tls_events_server.attempts == []


def test_unreadable_ca_file_leaves_the_bridge_idle_with_an_error_naming_the_key(
        fake_orthanc: FakeOrthanc, token_file: Path, tmp_path: Path) -> None:
    fake_orthanc.configuration = {"OrthancSegBridge": bridge_section(
        "127.0.0.1:1", token_file, CaFile=str(tmp_path / "missing-ca.pem"))}

    load_bridge()

    assert fake_orthanc.callbacks == []
    [error] = fake_orthanc.messages("error")
    assert "CaFile" in error and "missing-ca.pem" in error


def basic(user: str, password: str = "secret") -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(
        ("%s:%s" % (user, password)).encode()).decode()}


def test_read_upload_users_may_read_upload_and_search_and_nothing_else(
        fake_orthanc: FakeOrthanc, run_bridge: RunBridge) -> None:
    run_bridge(unreachable_address(), start=False, ReadUploadUsers=["orthancseg-worker"])
    [allowed] = fake_orthanc.http_filters
    worker = basic("orthancseg-worker")
    GET, POST, PUT, DELETE = 1, 2, 3, 4

    assert allowed("/series/abc/instances-tags", method=GET, headers=worker)
    assert allowed("/instances", method=POST, headers=worker)
    assert allowed("/instances/0a1b-2c3d/modify", method=POST, headers=worker)
    assert allowed("/tools/find", method=POST, headers=worker)
    assert not allowed("/studies/abc", method=DELETE, headers=worker)
    assert not allowed("/instances/abc/metadata/1024", method=PUT, headers=worker)
    assert not allowed("/tools/reset", method=POST, headers=worker)
    assert not allowed("/tools/execute-script", method=POST, headers=worker)
    assert not allowed("/studies/abc/modify", method=POST, headers=worker)
    assert not allowed("/modalities/x/store", method=POST, headers=worker)
    # Other accounts keep what Orthanc gives them; a request without credentials is Orthanc's to refuse.
    assert allowed("/studies/abc", method=DELETE, headers=basic("orthancseg"))
    assert allowed("/studies/abc", method=DELETE, headers={})
    refusals = [m for m in fake_orthanc.messages("warning") if "refused" in m]
    assert len(refusals) == 6 and "DELETE /studies/abc" in refusals[0]


def test_the_filter_guards_the_accounts_even_when_the_bridge_cannot_run(
        fake_orthanc: FakeOrthanc, tmp_path: Path) -> None:
    fake_orthanc.configuration = {"OrthancSegBridge": bridge_section(
        "127.0.0.1:1", tmp_path / "no-token", ReadUploadUsers=["orthancseg-worker"])}

    load_bridge()

    assert fake_orthanc.callbacks == []
    [allowed] = fake_orthanc.http_filters
    assert not allowed("/studies/abc", method=4, headers=basic("orthancseg-worker"))
