"""Figures on real scanner data, for the docs: each section runs the command line as a user would
on ../shared/realdata (sources, licences and protocols in its README) and prints a markdown table.

    .venv/bin/python scripts/realdata_report.py --data ../shared/realdata [--sections vfa spgr-t1 ...]

Sections: vfa (MTsat brain, one TR per image), spgr-t1 (the network on the same brain against
Helms' two-flip-angle closed form; the reference has no B1 correction), b1-dam (the real 60/120
pair against qMRLab's map), t1-ir (real IR brain, white and grey matter), fatwater (ISMRM 2012
challenge cases: the share of voxels that the echo magnitudes clearly classify and that the
separation swapped). Philips scaling has no public real series here: its real-case arrangement
(sidecar flag 1 over a header slope equal to RS) is reproduced in Testing/Python/test_realdata.py.
The tests never read ../shared; this script is the only place that does.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

SECTIONS = ("vfa", "spgr-t1", "b1-dam", "t1-ir", "fatwater")


def q2mri(*args) -> str:
    r = subprocess.run([sys.executable, "-c", "from q2mri.cli.main import main; main()", *map(str, args), "--quiet"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"q2mri {' '.join(map(str, args))} failed: {r.stderr.strip()}")
    return r.stderr


def load(p: Path) -> np.ndarray:
    return np.asarray(nib.load(str(p)).get_fdata(), np.float64)


def agreement(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> tuple[float, float, float]:
    """(r, relative l1 = mean |a - b| / mean |b|, median relative difference) over m."""
    x, y = a[m], b[m]
    return (float(np.corrcoef(x, y)[0, 1]), float(np.abs(x - y).mean() / np.abs(y).mean()),
            float(np.median((x - y) / y)))


def helms_reference(data: Path):
    """T1 of Helms' closed form (small-angle, no B1) from the PDw/T1w pair, and the tissue mask."""
    import torch
    from q2mri.fitting.vfa import helms_closed_form
    pdw, t1w = load(data / "PDw.nii.gz"), load(data / "T1w.nii.gz")
    side = [json.loads((data / f"{n}.json").read_text()) for n in ("PDw", "T1w")]
    fa = np.deg2rad([s["FlipAngle"] for s in side])
    tr = np.array([s["RepetitionTime"] * 1000 for s in side])
    y = torch.from_numpy(np.stack([pdw, t1w], -1).reshape(-1, 2))
    _, t1 = helms_closed_form(y, torch.from_numpy(fa), torch.from_numpy(tr))
    t1 = t1.numpy().reshape(pdw.shape)
    peak = np.percentile(t1w, 99.5)
    mask = (t1w > 0.1 * peak) & (pdw > 0.1 * np.percentile(pdw, 99.5)) & (t1 > 300) & (t1 < 4000)
    return t1, mask


def section_vfa(data: Path, tmp: Path) -> list[str]:
    d = data / "brain-mtsat-3t"
    t0 = time.time()
    q2mri("fit", "vfa", "--input", d / "PDw.nii.gz", "--input", d / "T1w.nii.gz", "--out", tmp / "vfa")
    sec = time.time() - t0
    ref, mask = helms_reference(d)
    fit, q = load(tmp / "vfa" / "T1.nii.gz"), load(tmp / "vfa" / "quality.nii.gz")
    m = mask & (q == 1) & np.isfinite(fit)
    r, l1, med = agreement(fit, ref, m)
    return ["| MTsat brain (PDw 6 deg / 28 ms, T1w 20 deg / 18 ms) | q2mri fit vfa (LM, one TR per image) | "
            f"Helms 2008 closed form | {r:.4f} | {l1:.4f} | {100 * med:+.2f} % | {int(m.sum())} | {sec:.0f} s |"]


def section_spgr_t1(data: Path, tmp: Path) -> list[str]:
    d = data / "brain-mtsat-3t"
    ref, mask = helms_reference(d)
    rows = []
    for label, inputs in (("one image: T1w 20 deg, TR 18 ms", ["T1w"]),
                          ("two images: PDw 6 deg / 28 ms + T1w 20 deg / 18 ms", ["PDw", "T1w"])):
        out = tmp / ("p" + "".join(inputs))
        args = sum((["--input", d / f"{n}.nii.gz"] for n in inputs), [])
        t0 = time.time()
        err = q2mri("predict", "--task", "spgr-t1", *args, "--out", out)
        sec = time.time() - t0
        t1 = load(out / "T1.nii.gz")
        m = mask & np.isfinite(t1) & (t1 > 0)
        r, l1, med = agreement(t1, ref, m)
        sd = load(out / "T1_sd.nii.gz")
        cover = float(np.mean(np.abs(t1[m] - ref[m]) <= sd[m]))
        unfamiliar = "unfamiliar" in err
        rows.append(f"| {label} | {r:.3f} | {l1:.3f} | {100 * med:+.1f} % | {cover:.2f} | "
                    f"{'yes' if unfamiliar else 'no'} | {int(m.sum())} | {sec:.0f} s |")
    return rows


def section_b1_dam(data: Path, tmp: Path) -> list[str]:
    d = data / "b1-dam"
    q2mri("fit", "b1-dam", "--input", d / "SF60.nii.gz", "--input", d / "SF120.nii.gz", "--out", tmp / "dam")
    b1, q = load(tmp / "dam" / "B1.nii.gz").squeeze(), load(tmp / "dam" / "quality.nii.gz").squeeze()
    ref = load(d / "B1map_qmrlab.nii.gz").squeeze()
    m = (q == 1) & np.isfinite(ref) & (ref > 0)
    r = float(np.corrcoef(b1[m], ref[m])[0, 1])
    return [f"| b1-dam (60/120 deg, 64 x 64) | {r:.6f} | {float(np.median(b1[m] - ref[m])):+.2e} | "
            f"{float(np.median(b1[m])):.3f} | {int(m.sum())} | {int((q == 2).sum())} |"]


def section_t1_ir(data: Path, tmp: Path) -> list[str]:
    from sklearn.mixture import GaussianMixture
    d = data / "brain-ir"
    q2mri("fit", "t1-ir", "--input", d / "IR.nii.gz", "--mask", d / "mask.nii.gz", "--out", tmp / "ir")
    t1, q = load(tmp / "ir" / "T1.nii.gz"), load(tmp / "ir" / "quality.nii.gz")
    v = t1[(q == 1) & (t1 > 300) & (t1 < 5000)]
    # white matter, grey matter and CSF as three Gaussians in log T1 (2 mm slices: partial volume is large)
    gm = GaussianMixture(3, random_state=0).fit(np.log(v)[:, None])
    means = np.sort(np.exp(gm.means_.ravel()))
    return [f"| t1-ir (9 TIs, TR not recorded, 2 mm) | {np.median(v):.0f} | {means[0]:.0f} | {means[1]:.0f} | "
            f"{int(v.size)} | {int((q == 2).sum())} |"]


def section_fatwater(data: Path, tmp: Path) -> list[str]:
    from q2mri.fitting.fatwater_magnitude import magnitude_sides, swapped_share
    from q2mri.fitting.voxelwise import default_mask
    rows = []
    for case in sorted((data / "fatwater-ismrm2012").glob("case*")):
        ks = sorted(int(p.name[5:-7]) for p in case.glob("mag_e*.nii.gz"))
        args = sum((["--input", case / f"mag_e{k}.nii.gz"] for k in ks), []) + \
            sum((["--phase", case / f"ph_e{k}.nii.gz"] for k in ks), [])
        t0 = time.time()
        q2mri("fit", "fatwater", *args, "--out", tmp / case.name)
        sec = time.time() - t0
        mag = np.stack([load(case / f"mag_e{k}.nii.gz") for k in ks], -1)
        side = json.loads((case / "mag_e1.json").read_text())
        te = [json.loads((case / f"mag_e{k}.json").read_text())["EchoTime"] * 1000 for k in ks]
        sides = magnitude_sides(mag, te, side["MagneticFieldStrength"], default_mask(mag, 0.1))
        pdff = load(tmp / case.name / "PDFF.nii.gz")
        share, n = swapped_share(pdff, sides)
        flagged = int(((sides > 0) & ~np.isfinite(pdff)).sum())
        rows.append(f"| {case.name} | {side['MagneticFieldStrength']:g} T | {len(ks)} | {100 * share:.1f} % | {n} | "
                    f"{flagged} | {sec:.0f} s |")
    return rows


HEADERS = {
    "vfa": ["| data | fit | reference | r | rel. l1 | median difference | voxels | time |", "|---|---|---|---|---|---|---|---|"],
    "spgr-t1": ["| q2mri predict --task spgr-t1 on the MTsat brain | r | rel. l1 | median difference | 1-SD coverage "
                "of the reference | unfamiliar warning | voxels | time |", "|---|---|---|---|---|---|---|---|"],
    "b1-dam": ["| data | r with qMRLab | median difference | median B1 | voxels | flagged |", "|---|---|---|---|---|---|"],
    "t1-ir": ["| data | median T1 (ms) | white matter (ms) | grey matter (ms) | voxels | flagged |", "|---|---|---|---|---|---|"],
    "fatwater": ["| ISMRM 2012 case | field | echoes | swapped | confidently classified voxels | of them flagged (NaN) | "
                 "time |", "|---|---|---|---|---|---|---|"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="../shared/realdata")
    ap.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    args = ap.parse_args()
    data = Path(args.data)
    if not data.is_dir():
        raise SystemExit(f"no real-data folder at {data}")
    funcs = {"vfa": section_vfa, "spgr-t1": section_spgr_t1, "b1-dam": section_b1_dam, "t1-ir": section_t1_ir,
             "fatwater": section_fatwater}
    with tempfile.TemporaryDirectory() as tmp:
        for s in args.sections:
            print(f"\n### {s}\n")
            print("\n".join(HEADERS[s] + funcs[s](data, Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
