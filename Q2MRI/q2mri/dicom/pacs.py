"""A PACS as a DICOM network peer (pynetdicom): C-ECHO, C-FIND at series level (study root),
C-GET of a study or series into a folder, and C-STORE of files. Every failure a user can cause
(host down, wrong port, an AE title the PACS does not know) is a Q2MRIError saying what to check."""
from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import Q2MRIError

FIND_KEYS = ("PatientID", "PatientName", "StudyInstanceUID", "StudyDate", "SeriesInstanceUID", "SeriesNumber",
             "Modality", "SeriesDescription", "NumberOfSeriesRelatedInstances")

# what C-GET accepts back: the images Q2MRI reads and the objects it writes
_GET_SOP_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.4",        # MR Image
    "1.2.840.10008.5.1.4.1.1.4.1",      # Enhanced MR Image
    "1.2.840.10008.5.1.4.1.1.4.4",      # Legacy Converted Enhanced MR Image
    "1.2.840.10008.5.1.4.1.1.2",        # CT Image
    "1.2.840.10008.5.1.4.1.1.7",        # Secondary Capture
    "1.2.840.10008.5.1.4.1.1.30",       # Parametric Map
    "1.2.840.10008.5.1.4.1.1.66.4",     # Segmentation
    "1.2.840.10008.5.1.4.1.1.88.34",    # Comprehensive 3D SR
    "1.2.840.10008.5.1.4.1.1.88.33",    # Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.22",    # Enhanced SR
)


@dataclass
class Pacs:
    host: str
    port: int
    called_aet: str = "ANY-SCP"
    aet: str = "Q2MRI"
    timeout: float = 30.0

    @property
    def where(self) -> str:
        return f"{self.called_aet}@{self.host}:{self.port}"

    def _reachable(self) -> None:
        try:
            with socket.create_connection((self.host, self.port), timeout=min(self.timeout, 10.0)):
                pass
        except socket.gaierror:
            raise Q2MRIError(f"unknown PACS host {self.host!r}; check --host") from None
        except OSError as e:
            raise Q2MRIError(f"cannot connect to the PACS at {self.host}:{self.port} ({e.strerror or e}); "
                             "check --host and --port and that the PACS is running") from None

    def _associate(self, contexts, roles=None, handlers=None):
        from pynetdicom import AE
        if not (1 <= len(self.aet) <= 16) or not (1 <= len(self.called_aet) <= 16):
            raise Q2MRIError("AE titles have 1 to 16 characters; check --aet and --called-aet")
        self._reachable()
        ae = AE(ae_title=self.aet)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout
        for c in contexts:                      # an abstract syntax, or (abstract syntax, transfer syntaxes)
            if isinstance(c, tuple):
                ae.add_requested_context(c[0], c[1])
            else:
                ae.add_requested_context(c)
        assoc = ae.associate(self.host, self.port, ae_title=self.called_aet, ext_neg=roles or [],
                             evt_handlers=handlers or [])
        if assoc.is_established:
            return assoc
        if assoc.is_rejected:
            raise Q2MRIError(f"the PACS at {self.host}:{self.port} rejected the association from {self.aet} to "
                             f"{self.called_aet}; check --called-aet (the PACS's AE title) and that {self.aet} "
                             "(--aet) is known to the PACS")
        raise Q2MRIError(f"the PACS at {self.host}:{self.port} did not accept a DICOM association (aborted or timed "
                         "out); check that this port is the PACS's DICOM port, not its web port")

    def echo(self) -> None:
        from pynetdicom.sop_class import Verification
        assoc = self._associate([Verification])
        try:
            status = assoc.send_c_echo()
        finally:
            assoc.release()
        _check_status(status, "C-ECHO", self.where)

    def find(self, **filters: str) -> list[dict[str, str]]:
        """Series matching the filters (DICOM wildcards * and ? allowed), one dict each."""
        from pydicom.dataset import Dataset
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND
        q = Dataset()
        q.QueryRetrieveLevel = "SERIES"
        for key in FIND_KEYS:
            setattr(q, key, filters.get(key) or "")
        assoc = self._associate([FIND])
        out = []
        try:
            for status, ident in assoc.send_c_find(q, FIND):
                _check_status(status, "C-FIND", self.where, pending_ok=True)
                if ident is not None and status.Status in (0xFF00, 0xFF01):
                    out.append({k: str(getattr(ident, k, "") or "") for k in FIND_KEYS})
        finally:
            assoc.release()
        return sorted(out, key=lambda r: (r["StudyInstanceUID"], _int(r["SeriesNumber"]), r["SeriesInstanceUID"]))

    def get(self, out: str | Path, study_uid: str, series_uid: str | None = None,
            progress: Callable[[int, int], None] | None = None) -> dict[str, Path]:
        """C-GET a study (or one series) into out/<series number>-<description>/<SOP UID>.dcm;
        returns SeriesInstanceUID -> folder."""
        from pydicom.dataset import Dataset
        from pynetdicom import build_role, evt
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as GET
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        folders: dict[str, Path] = {}
        state = {"n": 0}

        def on_store(event):
            ds = event.dataset
            ds.file_meta = event.file_meta
            uid = str(ds.SeriesInstanceUID)
            if uid not in folders:
                folders[uid] = out / _series_folder(ds)
                folders[uid].mkdir(parents=True, exist_ok=True)
            target = folders[uid] / f"{ds.SOPInstanceUID}.dcm"
            tmp = target.with_name(target.name + ".part")
            ds.save_as(tmp, enforce_file_format=True)
            tmp.replace(target)                            # a file is there whole or not at all
            state["n"] += 1
            return 0x0000

        q = Dataset()
        q.QueryRetrieveLevel = "SERIES" if series_uid else "STUDY"
        q.StudyInstanceUID = study_uid
        if series_uid:
            q.SeriesInstanceUID = series_uid
        roles = [build_role(uid, scp_role=True) for uid in _GET_SOP_CLASSES]
        assoc = self._associate([GET, *_GET_SOP_CLASSES], roles, [(evt.EVT_C_STORE, on_store)])
        failed = 0
        try:
            for status, ident in assoc.send_c_get(q, GET):
                _check_status(status, "C-GET", self.where, pending_ok=True)
                if status and progress and "NumberOfCompletedSuboperations" in status:
                    done = int(status.NumberOfCompletedSuboperations)
                    left = int(getattr(status, "NumberOfRemainingSuboperations", 0) or 0)
                    progress(done, done + left)
                if status and "NumberOfFailedSuboperations" in status:
                    failed = int(status.NumberOfFailedSuboperations or 0)
        finally:
            assoc.release()
        if state["n"] == 0:
            what = f"series {series_uid}" if series_uid else f"study {study_uid}"
            raise Q2MRIError(f"the PACS at {self.where} returned no images for {what}; check the UID with 'q2mri pacs find'")
        if failed:
            raise Q2MRIError(f"{failed} image(s) of the retrieve failed (the PACS offered an object type Q2MRI does not "
                             f"accept); {state['n']} were saved under {out}")
        return folders

    def send(self, files: list[Path], progress: Callable[[int, int], None] | None = None) -> tuple[int, list[str]]:
        """C-STORE each file; (accepted count, one line per refused file)."""
        import pydicom
        dss = []
        for f in files:
            try:
                dss.append((f, pydicom.dcmread(f)))
            except Exception:
                continue
        if not dss:
            raise Q2MRIError("no DICOM files to send; give a folder or files written by q2mri export dicom or a scanner")
        classes = sorted({str(ds.SOPClassUID) for _, ds in dss})
        from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
        syntaxes = sorted({str(ds.file_meta.TransferSyntaxUID) for _, ds in dss} | {ExplicitVRLittleEndian,
                                                                                     ImplicitVRLittleEndian})
        assoc = self._associate([(c, syntaxes) for c in classes])
        accepted, refused = 0, []
        try:
            for i, (f, ds) in enumerate(dss):
                status = assoc.send_c_store(ds)
                if status and status.Status in (0x0000, 0xB000, 0xB007, 0xB006):
                    accepted += 1
                else:
                    code = f"0x{status.Status:04X}" if status else "no response"
                    refused.append(f"{f.name}: refused ({code})")
                if progress:
                    progress(i + 1, len(dss))
        finally:
            assoc.release()
        return accepted, refused


def _check_status(status, what: str, where: str, pending_ok: bool = False) -> None:
    if not status:
        raise Q2MRIError(f"{what} to {where} got no answer (timed out or aborted); check the PACS's log")
    code = int(status.Status)
    if code == 0x0000 or (pending_ok and code in (0xFF00, 0xFF01)):
        return
    if code == 0xA801 or code == 0xA701:
        raise Q2MRIError(f"{what} to {where} failed: the PACS does not know the destination or refused the "
                         f"request (status 0x{code:04X}); check that our AE title is configured on the PACS")
    if code == 0xB000:
        return
    raise Q2MRIError(f"{what} to {where} failed with status 0x{code:04X}; check the PACS's log")


def _int(text: str) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        return 0


def _series_folder(ds) -> str:
    desc = re.sub(r"[^A-Za-z0-9]+", "_", str(getattr(ds, "SeriesDescription", "") or "series")).strip("_")
    return f"{_int(getattr(ds, 'SeriesNumber', 0)):04d}-{desc[:40] or 'series'}"


def dicom_files(paths: list[str]) -> list[Path]:
    """Files under the given folders/files (every file; non-DICOM ones are skipped when read)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise Q2MRIError(f"{p} does not exist; check the path")
        out.extend(sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p])
    return out
