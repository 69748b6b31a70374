"""A real PACS for the tests: Debian's Orthanc on free loopback ports with a temporary
configuration and storage folder, stopped (and its folder removed) afterwards."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

AET = "ORTHANC"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Orthanc:
    dicom_port: int
    http_port: int
    folder: Path
    proc: subprocess.Popen

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_orthanc(folder: Path, our_aet: str = "Q2MRI") -> Orthanc:
    exe = shutil.which("Orthanc")
    if exe is None:
        raise RuntimeError("Orthanc (Debian package orthanc) is needed; ./run test installs it")
    folder.mkdir(parents=True, exist_ok=True)
    dicom, http = free_port(), free_port()
    cfg = {
        "Name": "Q2MRI test PACS", "StorageDirectory": str(folder / "storage"), "IndexDirectory": str(folder / "index"),
        "DicomAet": AET, "DicomPort": dicom, "HttpPort": http, "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False, "Plugins": [],
        # a PACS as hospitals configure it: the called AE title must be ours, and only known
        # modalities may query and retrieve
        "DicomCheckCalledAet": True, "DicomCheckModalityHost": False,
        "DicomModalities": {"q2mri": [our_aet, "127.0.0.1", free_port()]},
        "DicomAlwaysAllowEcho": True, "DicomAlwaysAllowStore": True,
        "StorageCompression": False, "ConcurrentJobs": 1,
    }
    (folder / "orthanc.json").write_text(json.dumps(cfg))
    log = open(folder / "orthanc.log", "w")
    proc = subprocess.Popen([exe, str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Orthanc exited: {(folder / 'orthanc.log').read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", dicom), timeout=1):
                return Orthanc(dicom, http, folder, proc)
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("Orthanc did not open its DICOM port within 60 s")
