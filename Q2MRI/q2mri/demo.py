"""./run demo: the core chain on the bundled sample case.

On the bundled knee case (q2mri simulate, knee-vfa protocol of papers/000 A.1):
AFI pair -> B1; four SPGR flip angles (+ B1) -> T1 and PD; compare with the ground truth;
synthesize an unseen flip angle from the fitted maps (papers/000 A.4) and compare it
with the same flip angle synthesized from the truth; ROI table per tissue; pictures.
Every step goes through the q2mri command line, as a user would run it.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from .cli.main import main as q2mri
from .display import overlay_png
from .io.images import read_image
from .metrics.agreement import bland_altman_plot
from .metrics.image import evaluate
from .physics import spgr

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "Resources" / "SampleData" / "knee-vfa" / "case-0000"
NEW_FA_DEG = 15.0


def run(cmd: list[str]) -> None:
    print("$ q2mri " + " ".join(cmd), flush=True)
    rc = q2mri(cmd + ["--quiet"] if cmd[0] == "fit" else cmd)
    if rc != 0:
        sys.exit(rc)


def report_table(title: str, rows: dict, path: Path, width: int, with_mpe: bool = False) -> None:
    """Print an accuracy table and keep it as JSON."""
    print(f"\n{title}")
    print(f"  {'comparison':{width}s} {'rel l1':>8s} {'r':>8s} {'SSIM':>7s}" + (f" {'MPE %':>7s}" if with_mpe else ""))
    for k, v in rows.items():
        print(f"  {k:{width}s} {v['l1']:8.4f} {v['corr']:8.5f} {v['ssim']:7.4f}" + (f" {v['mpe']:7.2f}" if with_mpe else ""))
    path.write_text(json.dumps(rows, indent=2))


def main(argv: list[str] | None = None) -> int:
    sample = SAMPLE
    if not (sample / "maps").is_dir():  # installed without the checkout: simulate it the same way
        from .phantoms.simulate import simulate_dataset
        sample = simulate_dataset("knee", "knee-vfa", 1, 7, Path(tempfile.mkdtemp()) / "knee-vfa", slices=6,
                                  matrix=96) / "case-0000"
    out = Path(argv[0]) if argv else ROOT / "out" / "demo"
    maps = out / "maps"
    img = sample
    run(["fit", "b1-afi", "--input", str(img / "afi_tr1.nii.gz"), "--input", str(img / "afi_tr2.nii.gz"),
         "--smooth-mm", "6", "--out", str(maps)])
    run(["fit", "vfa"] + sum((["--input", str(img / f"spgr_fa{fa:02d}.nii.gz")] for fa in (5, 10, 20, 30)), [])
        + ["--b1", str(maps / "B1.nii.gz"), "--out", str(maps)])
    run(["fit", "vfa"] + sum((["--input", str(img / f"spgr_fa{fa:02d}.nii.gz")] for fa in (5, 10, 20, 30)), [])
        + ["--out", str(out / "maps_noB1")])
    run(["synth", "--maps", str(maps), "--sequence", "spgr", "--flip-angle", str(NEW_FA_DEG), "--tr", "20",
         "--out", str(out / f"spgr_fa{int(NEW_FA_DEG)}_synth.nii.gz")])
    run(["roi", "--map", str(maps / "T1.nii.gz"), "--labels", str(sample / "maps" / "labels.nii.gz"),
         "--csv", str(out / "roi_T1.csv")])

    labels = read_image(sample / "maps" / "labels.nii.gz").array
    # Cortical bone and tendons (PD 0.2-0.5, ultrashort T2*) are in the ROI table, not the summary.
    tissue = (labels > 0) & (labels != 4) & (labels != 8)
    truth = {k: read_image(sample / "maps" / f"{k}.nii.gz").array for k in ("T1", "PD", "B1", "receive")}
    # The images carry the receive sensitivity, so VFA's PD is the apparent PD x receive.
    truth["PD_apparent"] = truth["PD"] * truth["receive"]
    fit = {k: read_image(maps / f"{k}.nii.gz").array for k in ("T1", "PD", "B1")}
    nob1 = read_image(out / "maps_noB1" / "T1.nii.gz").array
    synth = read_image(out / f"spgr_fa{int(NEW_FA_DEG)}_synth.nii.gz").array
    # what the scanner would have recorded at the new angle: truth maps with the receive field
    synth_truth = spgr(truth["T1"], truth["PD_apparent"], NEW_FA_DEG, 20.0, 0.0, np.inf, truth["B1"])
    report = {
        "B1 (AFI) vs truth": evaluate(fit["B1"], truth["B1"], tissue),
        "T1 (VFA + B1) vs truth": evaluate(fit["T1"], truth["T1"], tissue),
        "T1 (VFA, no B1) vs truth": evaluate(nob1, truth["T1"], tissue),
        "PD x receive (VFA + B1) vs truth": evaluate(fit["PD"], truth["PD_apparent"], tissue),
        f"synthesized {NEW_FA_DEG:g} deg vs truth": evaluate(synth, synth_truth, tissue),
    }
    report_table("Accuracy inside the tissue mask (cortical bone and tendons excluded):", report,
                 out / "report.json", 34, with_mpe=True)

    z = labels.shape[0] // 2
    bg = read_image(img / "spgr_fa20.nii.gz").array[z]
    overlay_png(bg, fit["T1"][z], "T1", str(out / "T1_overlay.png"), mask=labels[z] > 0,
                title="VFA T1 over the 20 deg SPGR image")
    bland_altman_plot(fit["T1"][tissue][::7], truth["T1"][tissue][::7], out / "T1_bland_altman.png",
                      label="T1 fit vs truth", unit="ms", relative=True)
    print(f"\nwrote {out}/report.json, T1_overlay.png, T1_bland_altman.png, roi_T1.csv")
    predict_demo(sample, out, truth, tissue, labels)
    return 0


def predict_demo(sample: Path, out: Path, truth: dict, tissue: np.ndarray, labels: np.ndarray) -> None:
    """spgr-t1 on the 30-deg image: maps, overlay, and papers/000 Table 2 in miniature."""
    import json

    from .models.registry import find_model
    folder = find_model(None, "spgr-t1")          # a bundled default ships with Q2MRI
    card = json.loads((folder / "card.json").read_text())
    print(f"\nspgr-t1 prediction with the bundled model {folder.name}" +
          (f": it is BELOW its accuracy targets (see Resources/Models/{folder.name}/card.md)" if card.get("preview") else ""))
    model = ["--model", folder.name]
    pred = out / "predict"
    run(["predict", "--task", "spgr-t1", "--input", str(sample / "spgr_fa30.nii.gz"), *model, "--out", str(pred),
         "--quiet"])
    maps = {k: read_image(pred / f"{k}.nii.gz").array for k in ("T1", "PD", "B1")}
    rows = {f"predicted {k} (from 30 deg) vs truth": evaluate(maps[k], truth[k], tissue) for k in ("T1", "PD", "B1")}
    for fa in (5.0, 10.0, 20.0):
        syn = spgr(maps["T1"], maps["PD"], fa, 20.0, 0.0, np.inf, maps["B1"])
        ref = spgr(truth["T1"], truth["PD"], fa, 20.0, 0.0, np.inf, truth["B1"])
        rows[f"synthesized {fa:g} deg vs truth"] = evaluate(syn, ref, tissue)
    report_table("spgr-t1 from the 30-degree image (papers/000; tissue mask):", rows, out / "predict_report.json", 42)
    z = labels.shape[0] // 2
    bg = read_image(sample / "spgr_fa30.nii.gz").array[z]
    overlay_png(bg, maps["T1"][z], "T1", str(out / "T1_predicted_overlay.png"), mask=labels[z] > 0,
                title="T1 predicted from one 30 deg SPGR image")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
