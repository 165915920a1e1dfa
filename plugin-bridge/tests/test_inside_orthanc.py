"""The bridge loaded by a real Orthanc 1.10 (Debian's orthanc + orthanc-python 4.0).

Each test starts a throwaway Orthanc (SQLite index in a temp directory, free ports) whose Python
plugin loads plugin-bridge/orthancseg_bridge.py, with a real gRPC server of this process standing
in for the worker.
"""

from __future__ import annotations

import io
import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from conftest import (BRIDGE_SCRIPT, CT_SOP_CLASS, SEG_SOP_CLASS, TOKEN, EventsServer,
                      bridge_section, free_port, wait_until)

pytestmark = pytest.mark.orthanc

ORTHANC = "/usr/sbin/Orthanc"
PYTHON_PLUGIN = "/usr/share/orthanc/plugins/libOrthancPython.so"
# Orthanc's own shutdown takes well under a second; a hang at Py_Finalize (a live non-daemon
# thread) would last until killed.
EXIT_TIMEOUT_SECONDS = 15


class RunningOrthanc:
    def __init__(self, directory: Path, bridge: Optional[dict[str, Any]]) -> None:
        self.port = free_port()
        self.log = directory / "orthanc.log"
        config: dict[str, Any] = {
            "Name": "orthancseg-bridge-test",
            "HttpPort": self.port,
            "DicomServerEnabled": False,
            "DicomPort": free_port(),
            "StorageDirectory": str(directory / "storage"),
            "IndexDirectory": str(directory / "storage"),
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "StableAge": 1,
            "Plugins": [PYTHON_PLUGIN],
            "PythonScript": str(BRIDGE_SCRIPT),
        }
        if bridge is not None:
            config["OrthancSegBridge"] = bridge
        config_file = directory / "orthanc.json"
        config_file.write_text(json.dumps(config, indent=2))
        self.process = subprocess.Popen(
            [ORTHANC, "--verbose-plugins", "--logfile=%s" % self.log, str(config_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, 30, "Orthanc to answer on port %d\n%s" % (self.port, self))

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail("Orthanc exited with %s\n%s" % (self.process.returncode, self))
        try:
            self.get("/system")
            return True
        except OSError:
            return False

    def get(self, uri: str) -> Any:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, uri), timeout=10) as r:
            return json.loads(r.read())

    def upload(self, dicom: bytes) -> dict[str, Any]:
        request = urllib.request.Request("http://127.0.0.1:%d/instances" % self.port, data=dicom,
                                         headers={"Content-Type": "application/dicom"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def stop(self) -> float:
        """Sends SIGTERM (as systemd does) and returns how long Orthanc took to exit."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(EXIT_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail("Orthanc did not exit within %d s of SIGTERM\n%s"
                        % (EXIT_TIMEOUT_SECONDS, self))
        return time.monotonic() - started

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __str__(self) -> str:
        return "--- Orthanc log ---\n" + self.log_text()[-6000:]


@pytest.fixture
def start_orthanc(tmp_path: Path) -> Iterator[Any]:
    started: list[RunningOrthanc] = []

    def start(bridge: Optional[dict[str, Any]]) -> RunningOrthanc:
        orthanc = RunningOrthanc(tmp_path, bridge)
        started.append(orthanc)
        return orthanc
    yield start
    for orthanc in started:
        if orthanc.process.poll() is None:
            orthanc.process.kill()
            orthanc.process.wait()


def dicom_instance(sop_class_uid: str, modality: str, study_uid: str, series_uid: str) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.is_little_endian = True
    dataset.is_implicit_VR = False
    dataset.SOPClassUID = sop_class_uid
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.PatientID = "ORTHANCSEG-BRIDGE-TEST"
    dataset.StudyInstanceUID = study_uid
    dataset.SeriesInstanceUID = series_uid
    dataset.Modality = modality
    buffer = io.BytesIO()
    dataset.save_as(buffer, write_like_original=False)
    return buffer.getvalue()


def test_inside_orthanc_uploads_reach_the_worker_and_orthanc_exits_promptly(
        start_orthanc: Any, token_file: Path, events_server: EventsServer) -> None:
    orthanc = start_orthanc(bridge_section(events_server.address, token_file))
    study = generate_uid()

    seg_series = generate_uid()

    ct = orthanc.upload(dicom_instance(CT_SOP_CLASS, "CT", study, generate_uid()))
    seg = orthanc.upload(dicom_instance(SEG_SOP_CLASS, "SEG", study, seg_series))
    # OHIF may save a later SEG into the series of an earlier one: no NewSeries for it.
    second_seg = orthanc.upload(dicom_instance(SEG_SOP_CLASS, "SEG", study, seg_series))

    def forwarded() -> bool:
        methods = {(c.method, c.request.orthanc_series_id if c.method == "NotifyStableSeries"
                    else c.request.orthanc_instance_id) for c in events_server.received}
        return {("NotifyStableSeries", ct["ParentSeries"]),
                ("NotifySegmentationStored", seg["ID"]),
                ("NotifySegmentationStored", second_seg["ID"])} <= methods
    wait_until(forwarded, 30, "the stable CT series and both SEGs to be forwarded\n%s" % orthanc)

    segs = [c for c in events_server.received if c.method == "NotifySegmentationStored"]
    # The CT instance is not forwarded as a segmentation.
    assert sorted(c.request.orthanc_instance_id for c in segs) == sorted([seg["ID"],
                                                                          second_seg["ID"]])
    assert {c.request.sop_class_uid for c in segs} == {SEG_SOP_CLASS}
    assert all(c.authorization == "Bearer " + TOKEN for c in events_server.received)

    assert orthanc.stop() < EXIT_TIMEOUT_SECONDS
    assert orthanc.process.returncode == 0, str(orthanc)


def test_inside_orthanc_worker_down_does_not_stop_uploads_or_shutdown(
        start_orthanc: Any, token_file: Path) -> None:
    orthanc = start_orthanc(bridge_section("127.0.0.1:%d" % free_port(), token_file))
    study = generate_uid()

    for _ in range(3):
        orthanc.upload(dicom_instance(SEG_SOP_CLASS, "SEG", study, generate_uid()))

    assert len(orthanc.get("/instances")) == 3
    assert orthanc.stop() < EXIT_TIMEOUT_SECONDS
    assert orthanc.process.returncode == 0, str(orthanc)


def test_inside_orthanc_without_a_bridge_section_orthanc_runs_and_logs_the_fix(
        start_orthanc: Any) -> None:
    orthanc = start_orthanc(None)

    orthanc.upload(dicom_instance(CT_SOP_CLASS, "CT", generate_uid(), generate_uid()))

    assert len(orthanc.get("/instances")) == 1
    assert orthanc.stop() < EXIT_TIMEOUT_SECONDS
    assert orthanc.process.returncode == 0, str(orthanc)
    assert "OrthancSeg: Orthanc's configuration has no \"OrthancSegBridge\" section" \
        in orthanc.log_text()
