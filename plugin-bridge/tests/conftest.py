"""Test fixtures: a fake `orthanc` module and a real gRPC server implementing orthancseg.v1.Events.

Only Orthanc is faked here (its Python module exists only inside the Orthanc process); gRPC is the
real library on both sides. test_inside_orthanc.py runs the bridge inside a real Orthanc.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
import types
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import grpc
import pytest

BRIDGE_DIR = Path(__file__).resolve().parent.parent
BRIDGE_SCRIPT = BRIDGE_DIR / "orthancseg_bridge.py"
GENERATED_DIR = BRIDGE_DIR / "generated"
TOKEN = "bridge-token-0123456789"
SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
LABELMAP_SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.7"
CT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.2"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "orthanc: starts a real Orthanc 1.10 with the Python plugin (Debian packages)")


def _generate() -> None:
    subprocess.run([str(BRIDGE_DIR / "generate.sh")], check=True, capture_output=True)


# Runs once, at collection, so that the generated modules can be imported by the tests themselves.
_generate()
if str(GENERATED_DIR) not in sys.path:
    sys.path.insert(0, str(GENERATED_DIR))
from orthancseg.v1 import events_pb2  # noqa: E402


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Polls a condition until it holds or the deadline passes (then fails naming `what`)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail("timed out after %g s waiting for %s" % (timeout, what))
        time.sleep(0.01)


# Test servers listen on ports from 30000-32767, below Linux's ephemeral range (32768-60999 by default), so an
# outgoing connection can never take a chosen port before its server binds it; none is handed out twice in a run.
# (The .NET tests use 20000-29999.)
_PORTS = itertools.count(os.getpid() * 97)


def free_port() -> int:
    for _ in range(2768):
        port = 30000 + next(_PORTS) % 2768
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port in 30000-32767")


# ---- fake orthanc -------------------------------------------------------------------------------

class OrthancException(Exception):
    """Like the plugin's: args are (error_code, description)."""


@dataclass
class FakeOrthanc:
    """State behind the fake `orthanc` module."""

    configuration: dict[str, Any] = field(default_factory=dict)
    sop_classes: dict[str, str] = field(default_factory=dict)
    logs: list[tuple[str, str]] = field(default_factory=list)
    callbacks: list[Callable[[int, int, str], None]] = field(default_factory=list)
    http_filters: list[Callable[..., bool]] = field(default_factory=list)
    rest_calls: list[str] = field(default_factory=list)

    def module(self) -> types.ModuleType:
        module = types.ModuleType("orthanc")
        module.ChangeType = types.SimpleNamespace(
            COMPLETED_SERIES=0, DELETED=1, NEW_CHILD_INSTANCE=2, NEW_INSTANCE=3, NEW_PATIENT=4,
            NEW_SERIES=5, NEW_STUDY=6, STABLE_PATIENT=7, STABLE_SERIES=8, STABLE_STUDY=9,
            ORTHANC_STARTED=10, ORTHANC_STOPPED=11, UPDATED_ATTACHMENT=12, UPDATED_METADATA=13)
        module.ResourceType = types.SimpleNamespace(
            PATIENT=0, STUDY=1, SERIES=2, INSTANCE=3, NONE=4)
        module.HttpMethod = types.SimpleNamespace(GET=1, POST=2, PUT=3, DELETE=4)
        module.OrthancException = OrthancException
        module.RegisterIncomingHttpRequestFilter = self.http_filters.append
        module.GetConfiguration = lambda: json.dumps(self.configuration)
        module.RestApiGet = self._rest_api_get
        module.RegisterOnChangeCallback = self._register
        module.LogInfo = lambda message: self.logs.append(("info", message))
        module.LogWarning = lambda message: self.logs.append(("warning", message))
        module.LogError = lambda message: self.logs.append(("error", message))
        return module

    def _register(self, callback: Callable[[int, int, str], None]) -> None:
        if self.callbacks:
            raise RuntimeError("Can only register one Python on-changes callback")
        self.callbacks.append(callback)

    def _rest_api_get(self, uri: str) -> bytes:
        self.rest_calls.append(uri)
        parts = uri.split("/")
        if len(parts) == 5 and parts[1] == "instances" and parts[3:] == ["metadata",
                                                                         "SopClassUid"]:
            if parts[2] in self.sop_classes:
                return self.sop_classes[parts[2]].encode("ascii")
            raise OrthancException(17, "Unknown resource")
        raise OrthancException(17, "the fake Orthanc does not serve " + uri)

    @property
    def callback(self) -> Callable[[int, int, str], None]:
        assert len(self.callbacks) == 1, "the bridge registered %d callbacks" % len(self.callbacks)
        return self.callbacks[0]

    def messages(self, level: str) -> list[str]:
        return [message for logged_level, message in self.logs if logged_level == level]

    # The change types as Orthanc sends them.
    def started(self) -> None:
        self.callback(10, 4, "")

    def stopped(self) -> None:
        self.callback(11, 4, "")

    def stable_series(self, series_id: str) -> None:
        self.callback(8, 2, series_id)

    def new_instance(self, instance_id: str, sop_class_uid: Optional[str] = None) -> None:
        if sop_class_uid is not None:
            self.sop_classes[instance_id] = sop_class_uid
        self.callback(3, 3, instance_id)


_module_names = itertools.count()


@pytest.fixture
def fake_orthanc(monkeypatch: pytest.MonkeyPatch) -> FakeOrthanc:
    fake = FakeOrthanc()
    monkeypatch.setitem(sys.modules, "orthanc", fake.module())
    return fake


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "bridge-token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    return path


def load_bridge(script: Path = BRIDGE_SCRIPT) -> types.ModuleType:
    """Imports the bridge as Orthanc does: a fresh module executed from the script's file."""
    spec = importlib.util.spec_from_file_location(
        "orthancseg_bridge_under_test_%d" % next(_module_names), script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as a real import does (dataclasses look the module up)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def run_bridge(fake_orthanc: FakeOrthanc,
               token_file: Path) -> Iterator[Callable[..., types.ModuleType]]:
    """Loads the bridge configured for a worker address, started unless start=False.

    The bridge is stopped after the test, so that no sender thread outlives its test.
    """
    def run(address: str, start: bool = True, **overrides: Any) -> types.ModuleType:
        fake_orthanc.configuration = {"OrthancSegBridge": bridge_section(address, token_file,
                                                                         **overrides)}
        module = load_bridge()
        if start:
            fake_orthanc.started()
        return module
    yield run
    if fake_orthanc.callbacks:
        fake_orthanc.stopped()


# ---- real gRPC server ---------------------------------------------------------------------------

@dataclass
class Received:
    method: str
    request: Any
    authorization: Optional[str]


class EventsServer:
    """A real grpc.server implementing orthancseg.v1.Events with generic handlers.

    It checks the bearer token like the worker does and can be told to answer the next calls
    with an error status, or to hang until released.
    """

    def __init__(self, port: int = 0, token: str = TOKEN,
                 tls: Optional[tuple[bytes, bytes]] = None) -> None:
        self.token = token
        self.received: list[Received] = []
        self.attempts: list[Received] = []
        self._failures: list[grpc.StatusCode] = []
        self._lock = threading.Lock()
        self.hang = threading.Event()
        self.release = threading.Event()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handlers = {
            "NotifyStableSeries": grpc.unary_unary_rpc_method_handler(
                self._handler("NotifyStableSeries", events_pb2.NotifyStableSeriesResponse),
                request_deserializer=events_pb2.NotifyStableSeriesRequest.FromString,
                response_serializer=events_pb2.NotifyStableSeriesResponse.SerializeToString),
            "NotifySegmentationStored": grpc.unary_unary_rpc_method_handler(
                self._handler("NotifySegmentationStored",
                              events_pb2.NotifySegmentationStoredResponse),
                request_deserializer=events_pb2.NotifySegmentationStoredRequest.FromString,
                response_serializer=events_pb2.NotifySegmentationStoredResponse.SerializeToString),
        }
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("orthancseg.v1.Events", handlers),))
        if tls is None:
            self.port = self._server.add_insecure_port("127.0.0.1:%d" % port)
        else:
            key, certificate = tls
            self.port = self._server.add_secure_port(
                "127.0.0.1:%d" % port, grpc.ssl_server_credentials([(key, certificate)]))
        assert self.port, "could not listen on port %d" % port
        self.address = "127.0.0.1:%d" % self.port

    def start(self) -> "EventsServer":
        self._server.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._server.stop(grace=None).wait(5)

    def fail_next(self, *codes: grpc.StatusCode) -> None:
        with self._lock:
            self._failures.extend(codes)

    def _handler(self, method: str, response_type: Any) -> Callable[[Any, Any], Any]:
        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            metadata = dict(context.invocation_metadata())
            call = Received(method, request, metadata.get("authorization"))
            with self._lock:
                self.attempts.append(call)
            if self.hang.is_set():
                self.release.wait(60)
                context.abort(grpc.StatusCode.UNAVAILABLE, "test server released")
            if call.authorization != "Bearer " + self.token:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "wrong or missing bearer token")
            with self._lock:
                failure = self._failures.pop(0) if self._failures else None
            if failure is not None:
                context.abort(failure, "failure requested by the test")
            with self._lock:
                self.received.append(call)
            return response_type(accepted=True)
        return handle

    def ids(self) -> list[str]:
        with self._lock:
            return [getattr(call.request, "orthanc_series_id", "")
                    or call.request.orthanc_instance_id for call in self.received]

    def wait_for(self, count: int, timeout: float = 10) -> list[Received]:
        wait_until(lambda: len(self.received) >= count, timeout,
                   "%d calls to reach the test server (got %d)" % (count, len(self.received)))
        with self._lock:
            return list(self.received)


@pytest.fixture
def events_server() -> Iterator[EventsServer]:
    server = EventsServer().start()
    yield server
    server.stop()


def bridge_section(address: str, token_path: os.PathLike[str] | str,
                   **overrides: Any) -> dict[str, Any]:
    section: dict[str, Any] = {"WorkerAddress": address, "TokenFile": str(token_path),
                               "QueueSize": 10000, "CallTimeoutSeconds": 5}
    section.update(overrides)
    return section
