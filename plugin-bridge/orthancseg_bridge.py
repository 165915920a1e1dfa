"""OrthancSeg bridge: forwards Orthanc changes to the OrthancSeg worker over gRPC.

Orthanc's Python plugin (4.0) imports this file through the "PythonScript" option. It forwards
STABLE_SERIES as ``orthancseg.v1.Events/NotifyStableSeries`` and NEW_INSTANCE of a DICOM SEG as
``NotifySegmentationStored``. The push is a fast path only: the worker replays Orthanc's /changes
log to catch up, so an event this bridge drops (queue full, worker rejecting it, Orthanc stopping)
is recovered there. That is why nothing here ever makes Orthanc wait on the worker.

Threads: the plugin calls ``_on_change`` on its single change thread, which only enqueues. One
daemon sender thread, started at ORTHANC_STARTED and joined at ORTHANC_STOPPED, does the REST
look-ups and the gRPC calls. The sender must be a daemon and must be joined: a live non-daemon
thread makes Py_Finalize, and so Orthanc's shutdown, hang.

Change sequence numbers: the on-change callback does not receive Orthanc's /changes sequence
number, and finding it means scanning /changes while holding the GIL (plugin 4.0 keeps it during
SDK calls, freezing every Python thread). The bridge therefore sends ``change_seq = 0`` ("unknown",
as the contract allows); the worker re-reads the resource anyway and its catch-up tracks sequence
numbers itself.

Configuration (Orthanc's configuration, section "OrthancSegBridge")::

    "OrthancSegBridge": {"WorkerAddress": "127.0.0.1:50051", "TokenFile": "/abs/bridge-token",
                         "QueueSize": 10000, "CallTimeoutSeconds": 5,
                         "CaFile": "/abs/link-ca.pem", "ReadUploadUsers": ["orthancseg-worker"]}

CaFile (optional): the worker is on another machine and serves TLS; the channel trusts only the
certificates this CA (PEM) signed, and WorkerAddress must be a name or address in the worker's
certificate. ReadUploadUsers (optional): Orthanc accounts (RegisteredUsers) that may read and upload
but not delete or change anything: an incoming-HTTP filter refuses their other requests (403). The
filter knows the user from the request's Basic Authorization header, as Orthanc checked it.

The gRPC modules are generated (never committed) by plugin-bridge/generate.sh into
plugin-bridge/generated/. Any setup problem is logged with the fix and leaves the bridge idle;
Orthanc itself keeps running.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import queue
import random
import sys
import threading
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Optional

import orthanc

SECTION = "OrthancSegBridge"
SEGMENTATION_SOP_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation Storage
    "1.2.840.10008.5.1.4.1.1.66.7",  # Label Map Segmentation Storage
})
GENERATED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "generated")

DEFAULT_WORKER_ADDRESS = "127.0.0.1:50051"
DEFAULT_QUEUE_SIZE = 10000
DEFAULT_CALL_TIMEOUT_SECONDS = 5.0

BACKOFF_INITIAL_SECONDS = 0.2
BACKOFF_MAX_SECONDS = 30.0
# Failures other than UNAVAILABLE may be caused by this very event (a worker bug answering
# INTERNAL, say); retrying it forever would stall every later event behind it.
MAX_ATTEMPTS_UNLESS_UNAVAILABLE = 10
# An HTTP/2 connection whose peer vanished without a word (the link between two machines cut, the
# other machine powered off) is found dead by pings within ~15 s: calls then fail UNAVAILABLE, which
# is retried for as long as it lasts, instead of DEADLINE_EXCEEDED on a dead connection, which is not.
CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 10000),
    ("grpc.keepalive_timeout_ms", 5000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # gRPC's own reconnection backoff grows to 120 s: the link back, changes flow within 10 s.
    ("grpc.max_reconnect_backoff_ms", 10000),
)
# Orthanc's shutdown waits for this; closing the channel cancels an in-flight call, so the sender
# normally stops in milliseconds.
STOP_JOIN_TIMEOUT_SECONDS = 5.0
# One warning per this many dropped events, so a long worker outage cannot flood Orthanc's log.
DROP_WARNING_INTERVAL = 1000
SENDER_THREAD_NAME = "OrthancSeg bridge sender"

_METHOD_NAMES = {1: "GET", 2: "POST", 3: "PUT", 4: "DELETE"}

_IDLE = "The bridge stays idle (Orthanc itself runs normally)."


class ConfigError(Exception):
    """The bridge's section or token file is unusable; the message names the key and the fix."""


@dataclass(frozen=True)
class BridgeConfig:
    worker_address: str
    token_file: str
    queue_size: int
    call_timeout_seconds: float
    ca_file: Optional[str] = None
    read_upload_users: frozenset[str] = frozenset()


def parse_config(configuration_json: str) -> BridgeConfig:
    """Reads the OrthancSegBridge section of Orthanc's merged configuration."""
    example = ('"%s": {"WorkerAddress": "%s", "TokenFile": "/absolute/path/to/bridge-token"}'
               % (SECTION, DEFAULT_WORKER_ADDRESS))
    try:
        configuration = json.loads(configuration_json)
    except ValueError as error:
        raise ConfigError("Orthanc's configuration is not valid JSON (%s)." % error) from error
    section = configuration.get(SECTION) if isinstance(configuration, dict) else None
    if section is None:
        raise ConfigError("Orthanc's configuration has no \"%s\" section; add {%s} to it and "
                          "restart Orthanc." % (SECTION, example))
    if not isinstance(section, dict):
        raise ConfigError("\"%s\" must be a JSON object such as {%s}." % (SECTION, example))

    known = ("WorkerAddress", "TokenFile", "QueueSize", "CallTimeoutSeconds", "CaFile",
             "ReadUploadUsers")
    for key in section:
        if key not in known:
            orthanc.LogWarning("OrthancSeg: ignoring unknown configuration key \"%s.%s\"; the "
                               "known keys are %s." % (SECTION, key, ", ".join(known)))

    address = section.get("WorkerAddress", DEFAULT_WORKER_ADDRESS)
    if not isinstance(address, str) or not address.strip() or any(c.isspace() for c in address):
        raise ConfigError("\"%s.WorkerAddress\" must be the worker's gRPC address as host:port "
                          "(e.g. \"%s\"), got %s." % (SECTION, DEFAULT_WORKER_ADDRESS,
                                                      json.dumps(address)))

    token_file = section.get("TokenFile")
    if not isinstance(token_file, str) or not os.path.isabs(token_file):
        raise ConfigError("\"%s.TokenFile\" must be the absolute path of the file holding the "
                          "bridge's bearer token (e.g. .stack/secrets/bridge-token), got %s."
                          % (SECTION, json.dumps(token_file)))

    queue_size = section.get("QueueSize", DEFAULT_QUEUE_SIZE)
    if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
        raise ConfigError("\"%s.QueueSize\" must be a positive integer (default %d), got %s."
                          % (SECTION, DEFAULT_QUEUE_SIZE, json.dumps(queue_size)))

    timeout = section.get("CallTimeoutSeconds", DEFAULT_CALL_TIMEOUT_SECONDS)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ConfigError("\"%s.CallTimeoutSeconds\" must be a positive number of seconds "
                          "(default %g), got %s." % (SECTION, DEFAULT_CALL_TIMEOUT_SECONDS,
                                                     json.dumps(timeout)))

    ca_file = section.get("CaFile")
    if ca_file is not None and (not isinstance(ca_file, str) or not os.path.isabs(ca_file)):
        raise ConfigError("\"%s.CaFile\" must be the absolute path of the PEM file of the CA that "
                          "signed the worker's certificate (make link-bundle hands it over), got %s."
                          % (SECTION, json.dumps(ca_file)))

    users = section.get("ReadUploadUsers", [])
    if not isinstance(users, list) or not all(isinstance(u, str) and u and ":" not in u
                                              for u in users):
        raise ConfigError("\"%s.ReadUploadUsers\" must be a list of Orthanc user names "
                          "(RegisteredUsers), got %s." % (SECTION, json.dumps(users)))

    return BridgeConfig(address.strip(), token_file, queue_size, float(timeout), ca_file,
                        frozenset(users))


def read_ca(path: str) -> bytes:
    """Reads the CA certificate the worker's TLS certificate must chain to; raises ConfigError."""
    try:
        with open(path, "rb") as stream:
            pem = stream.read()
    except OSError as error:
        raise ConfigError("cannot read the CA file \"%s\" (%s.CaFile): %s; make up ROLE=pacs "
                          "LINK=bundle.tar installs it from the segmentation side's link bundle."
                          % (path, SECTION, error.strerror or error)) from error
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise ConfigError("the CA file \"%s\" (%s.CaFile) holds no PEM certificate "
                          "(-----BEGIN CERTIFICATE-----)." % (path, SECTION))
    return pem


def read_token(path: str) -> str:
    """Reads the bearer token; raises ConfigError naming the file and the fix."""
    try:
        with open(path, encoding="utf-8") as stream:
            token = stream.read().strip()
    except OSError as error:
        raise ConfigError(
            "cannot read the bridge token file \"%s\" (%s.TokenFile): %s; create it with the "
            "worker's bridge token (OrthancSeg:Auth:BridgeTokenFile) and make it readable by "
            "Orthanc." % (path, SECTION, error.strerror)) from error
    if not token or any(c.isspace() for c in token):
        raise ConfigError(
            "the bridge token file \"%s\" (%s.TokenFile) must hold one token without spaces, "
            "the same as the worker's OrthancSeg:Auth:BridgeTokenFile." % (path, SECTION))
    return token


@dataclass(frozen=True)
class _Event:
    change_type: int
    resource_id: str


# Put on the queue by stop() so that the sender wakes at once instead of at its next poll.
_WAKE_UP = _Event(-1, "")


class Bridge:
    """Owns the queue, the sender thread and the gRPC channel."""

    def __init__(self, config: BridgeConfig, token: str, grpc_module: ModuleType,
                 events_pb2: ModuleType, events_pb2_grpc: ModuleType,
                 ca_pem: Optional[bytes] = None) -> None:
        self._config = config
        self._ca_pem = ca_pem
        self._token = token
        self._grpc = grpc_module
        self._pb2 = events_pb2
        self._pb2_grpc = events_pb2_grpc
        self._queue: queue.Queue[_Event] = queue.Queue(maxsize=config.queue_size)
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._channel_lock = threading.Lock()
        self._channel: Any = None
        self._dropped = 0
        self._unavailable_since: Optional[float] = None
        codes = grpc_module.StatusCode
        # Everything else (INVALID_ARGUMENT, PERMISSION_DENIED, NOT_FOUND, ...) would fail again.
        self._retried_codes = frozenset({
            codes.UNAVAILABLE, codes.DEADLINE_EXCEEDED, codes.RESOURCE_EXHAUSTED, codes.ABORTED,
            codes.INTERNAL, codes.UNKNOWN, codes.CANCELLED})

    # ---- Orthanc's change thread: nothing here may block ----------------------------------------

    def on_change(self, change_type: int, resource_type: int, resource_id: str) -> None:
        if change_type == orthanc.ChangeType.STABLE_SERIES \
                or change_type == orthanc.ChangeType.NEW_INSTANCE:
            self._enqueue(_Event(int(change_type), resource_id))
        elif change_type == orthanc.ChangeType.ORTHANC_STARTED:
            self.start()
        elif change_type == orthanc.ChangeType.ORTHANC_STOPPED:
            self.stop()

    def _enqueue(self, event: _Event) -> None:
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self._dropped += 1
            if (self._dropped - 1) % DROP_WARNING_INTERVAL == 0:
                orthanc.LogWarning(
                    "OrthancSeg: the bridge queue is full (QueueSize %d), dropped the change of "
                    "%s (%d dropped so far); the worker recovers dropped changes from Orthanc's "
                    "/changes log." % (self._config.queue_size, event.resource_id, self._dropped))

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=SENDER_THREAD_NAME, daemon=True)
        self._thread.start()
        orthanc.LogInfo("OrthancSeg: bridge started, forwarding to the worker at %s."
                        % self._config.worker_address)

    def stop(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        try:
            self._queue.put_nowait(_WAKE_UP)
        except queue.Full:
            pass  # The sender is busy, not waiting on the queue; it sees _stopping next.
        self._close_channel()  # Cancels an in-flight call at once.
        thread.join(STOP_JOIN_TIMEOUT_SECONDS)
        self._thread = None
        if thread.is_alive():
            orthanc.LogWarning("OrthancSeg: the bridge sender did not stop within %g s; it is a "
                               "daemon thread, so Orthanc exits anyway."
                               % STOP_JOIN_TIMEOUT_SECONDS)
        left = sum(1 for event in self._drain() if event is not _WAKE_UP)
        orthanc.LogInfo("OrthancSeg: bridge stopped; %d undelivered changes are left to the "
                        "worker's catch-up." % left)

    def _drain(self) -> list[_Event]:
        events = []
        while True:
            try:
                events.append(self._queue.get_nowait())
            except queue.Empty:
                return events

    def _close_channel(self) -> None:
        with self._channel_lock:
            channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()

    # ---- the sender thread ----------------------------------------------------------------------

    def _run(self) -> None:
        with self._channel_lock:
            if self._stopping.is_set():
                return
            if self._config.ca_file is None:
                self._channel = self._grpc.insecure_channel(self._config.worker_address,
                                                            options=CHANNEL_OPTIONS)
            else:
                credentials = self._grpc.ssl_channel_credentials(root_certificates=self._ca_pem)
                self._channel = self._grpc.secure_channel(self._config.worker_address, credentials,
                                                          options=CHANNEL_OPTIONS)
            stub = self._pb2_grpc.EventsStub(self._channel)
        try:
            while not self._stopping.is_set():
                try:
                    event = self._queue.get(timeout=0.5)
                except queue.Empty:
                    continue
                if event is _WAKE_UP:
                    continue
                try:
                    self._forward(stub, event)
                except Exception as error:  # noqa: BLE001 - the sender must outlive any one event
                    if not self._stopping.is_set():
                        orthanc.LogError(
                            "OrthancSeg: unexpected error forwarding the change of %s, dropped "
                            "(the worker's catch-up recovers it): %r" % (event.resource_id, error))
        finally:
            self._close_channel()

    def _forward(self, stub: Any, event: _Event) -> None:
        if event.change_type == orthanc.ChangeType.STABLE_SERIES:
            request = self._pb2.NotifyStableSeriesRequest(
                orthanc_series_id=event.resource_id, change_seq=0)
            self._call(stub.NotifyStableSeries, request, "stable series " + event.resource_id)
            return
        sop_class_uid = self._sop_class_uid(event.resource_id)
        if sop_class_uid in SEGMENTATION_SOP_CLASSES:
            request = self._pb2.NotifySegmentationStoredRequest(
                orthanc_instance_id=event.resource_id, change_seq=0, sop_class_uid=sop_class_uid)
            self._call(stub.NotifySegmentationStored, request,
                       "segmentation instance " + event.resource_id)

    def _sop_class_uid(self, instance_id: str) -> Optional[str]:
        # A metadata read touches only Orthanc's index: cheap even though the GIL stays held.
        try:
            answer = orthanc.RestApiGet("/instances/%s/metadata/SopClassUid" % instance_id)
        except orthanc.OrthancException as error:
            orthanc.LogWarning("OrthancSeg: cannot read the SOP Class UID of instance %s (%s); "
                               "not forwarded (deleted meanwhile?)." % (instance_id, error))
            return None
        if isinstance(answer, bytes):
            answer = answer.decode("ascii", "replace")
        return answer.strip().rstrip("\0")

    def _call(self, method: Callable[..., Any], request: Any, what: str) -> None:
        """Sends one request, retrying transient failures with capped, jittered backoff."""
        codes = self._grpc.StatusCode
        token_reread = False
        attempt = 0
        while not self._stopping.is_set():
            attempt += 1
            try:
                method(request, timeout=self._config.call_timeout_seconds,
                       metadata=(("authorization", "Bearer " + self._token),))
            except self._grpc.RpcError as error:
                if self._stopping.is_set():
                    return
                code, details = error.code(), error.details()
            except ValueError:
                if self._stopping.is_set():
                    return  # The channel was closed by stop() between two attempts.
                raise
            else:
                if self._unavailable_since is not None:
                    orthanc.LogInfo("OrthancSeg: the worker answers again after %.0f s."
                                    % (time.monotonic() - self._unavailable_since))
                    self._unavailable_since = None
                return

            if code == codes.UNAUTHENTICATED and not token_reread:
                # The token may have been rotated since Orthanc started: one fresh read, one retry.
                token_reread = True
                try:
                    self._token = read_token(self._config.token_file)
                except ConfigError as error:
                    orthanc.LogError("OrthancSeg: %s" % error)
                continue
            if code not in self._retried_codes:
                orthanc.LogError(
                    "OrthancSeg: the worker refused the %s with %s (%s); dropped. %s"
                    % (what, code.name, details, _fix_hint(code)))
                return
            if code != codes.UNAVAILABLE and attempt >= MAX_ATTEMPTS_UNLESS_UNAVAILABLE:
                orthanc.LogError(
                    "OrthancSeg: giving up on the %s after %d attempts, last %s (%s); the "
                    "worker's catch-up recovers it." % (what, attempt, code.name, details))
                return
            if code == codes.UNAVAILABLE and self._unavailable_since is None:
                self._unavailable_since = time.monotonic()
                orthanc.LogWarning("OrthancSeg: the worker at %s is unavailable (%s); retrying "
                                   "with backoff, Orthanc is not affected."
                                   % (self._config.worker_address, details))
            elif code != codes.UNAVAILABLE:
                orthanc.LogWarning("OrthancSeg: the %s failed with %s (%s), attempt %d; retrying."
                                   % (what, code.name, details, attempt))
            self._stopping.wait(_backoff_seconds(attempt))


def _backoff_seconds(attempt: int) -> float:
    # "Equal jitter": at least half the exponential delay, so retries stay spread out but never
    # collapse to a busy loop.
    delay = min(BACKOFF_MAX_SECONDS, BACKOFF_INITIAL_SECONDS * 2 ** min(attempt - 1, 20))
    return delay / 2 + random.uniform(0, delay / 2)


def _fix_hint(code: Any) -> str:
    name = getattr(code, "name", "")
    if name in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return ("Check that %s.TokenFile holds the same token as the worker's "
                "OrthancSeg:Auth:BridgeTokenFile." % SECTION)
    if name == "UNIMPLEMENTED":
        return ("Check that %s.WorkerAddress points at the OrthancSeg worker." % SECTION)
    return "The worker's catch-up from Orthanc's /changes log recovers it."


def _import_grpc() -> Optional[tuple[ModuleType, ModuleType, ModuleType]]:
    try:
        import grpc
    except ImportError as error:
        orthanc.LogError("OrthancSeg: cannot import grpc (%s); install Debian's python3-grpcio "
                         "and restart Orthanc. %s" % (error, _IDLE))
        return None
    if GENERATED_DIR not in sys.path:
        sys.path.insert(0, GENERATED_DIR)
    try:
        from orthancseg.v1 import events_pb2, events_pb2_grpc
    except Exception as error:  # noqa: BLE001 - also protobuf version mismatches (TypeError)
        orthanc.LogError("OrthancSeg: cannot import the generated gRPC modules from %s (%s); run "
                         "plugin-bridge/generate.sh and restart Orthanc. %s"
                         % (GENERATED_DIR, error, _IDLE))
        return None
    return grpc, events_pb2, events_pb2_grpc


# What an account of ReadUploadUsers may POST besides reading (GET): store an instance, fetch one
# transcoded without storing it (1.10.1's /modify of an instance answers the file), and search.
READ_UPLOAD_POSTS = re.compile(r"/instances|/instances/[0-9a-f-]+/modify|/tools/find|/tools/lookup")


def basic_user(headers: Any) -> Optional[str]:
    """The user name of a request's HTTP Basic Authorization header (keys are lower case), if any."""
    value = headers.get("authorization") if isinstance(headers, dict) else None
    if not isinstance(value, str) or not value[:6].lower() == "basic ":
        return None
    try:
        decoded = base64.b64decode(value[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0]


def make_http_filter(users: frozenset[str]) -> Callable[..., bool]:
    """Orthanc's incoming-HTTP filter: accounts in USERS may read and upload, nothing else."""
    def allowed(uri: str, **request: Any) -> bool:
        user = basic_user(request.get("headers"))
        if user not in users:
            return True
        method = request.get("method")
        if method == orthanc.HttpMethod.GET:
            return True
        if method == orthanc.HttpMethod.POST and READ_UPLOAD_POSTS.fullmatch(uri):
            return True
        orthanc.LogWarning("OrthancSeg: refused %s %s to the read-and-upload account \"%s\" "
                           "(%s.ReadUploadUsers): it may read, upload and search only."
                           % (_METHOD_NAMES.get(method, method), uri, user, SECTION))
        return False
    return allowed


def create_bridge() -> Optional[Bridge]:
    """Builds the bridge from Orthanc's configuration, or logs why not and returns None.

    The ReadUploadUsers filter is registered whenever the configuration names them, even if the
    bridge itself cannot run: the accounts must never gain more than reading and uploading.
    """
    try:
        config = parse_config(orthanc.GetConfiguration())
    except ConfigError as error:
        orthanc.LogError("OrthancSeg: %s %s" % (error, _IDLE))
        return None
    if config.read_upload_users:
        orthanc.RegisterIncomingHttpRequestFilter(make_http_filter(config.read_upload_users))
    try:
        token = read_token(config.token_file)
        ca_pem = read_ca(config.ca_file) if config.ca_file else None
    except ConfigError as error:
        orthanc.LogError("OrthancSeg: %s %s" % (error, _IDLE))
        return None
    modules = _import_grpc()
    if modules is None:
        return None
    return Bridge(config, token, *modules, ca_pem=ca_pem)


_BRIDGE = create_bridge()
if _BRIDGE is not None:
    # Registration must happen at import (the plugin's initialisation); Orthanc allows one
    # on-change callback per process.
    orthanc.RegisterOnChangeCallback(_BRIDGE.on_change)
