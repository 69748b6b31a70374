"""The accuracy targets of the [models] issue, checked against a model card's held-out metrics.

Each row: (what, our value, target text, met?, the seed paper's number on its real data). The
seeds measured real scans and we measure held-out simulated subjects, so the comparison is of
scale, not of the same data. Used by scripts/bundle_model.py (a model below any target is marked
so in its card) and scripts/accuracy_table.py (the README table).
"""
from __future__ import annotations

Row = tuple[str, float | None, str, bool | None, str]


def _get(metrics: dict, label_start: str) -> dict | None:
    return next((v for k, v in metrics.items() if k.startswith(label_start)), None)


def check(task: str, metrics: dict) -> list[Row]:
    rows: list[Row] = []

    def add(what, value, target, ok, seed=""):
        rows.append((what, value, target, None if (value is None or ok is None) else bool(ok), seed))

    if task == "spgr-t1":
        m20, m17 = _get(metrics, "FA 20"), _get(metrics, "FA 17")
        two = _get(metrics, "two flip")
        if m20:
            t = m20["targets"]["T1"]
            add("T1 Pearson r, FA 20 deg", t["corr"], ">= 0.99", t["corr"] >= 0.99, "0.978")
            add("T1 relative l1, FA 20 deg", t["l1"], "<= 0.05", t["l1"] <= 0.05, "0.095")
            add("T1 SSIM, FA 20 deg", t["ssim"], ">= 0.90", t["ssim"] >= 0.90, "0.815")
            b = m20["targets"]["B1"]
            add("B1 Pearson r, FA 20 deg", b["corr"], ">= 0.99", b["corr"] >= 0.99, "")
            s = m20.get("T1_error_slope_per_0.1_B1")
            if s is not None:
                add("T1 error slope per 0.1 of B1 (%)", 100 * s, "abs(slope) < 2 %", abs(100 * s) < 2.0, "")
            add("T1 68 % interval coverage (calibration)", t["coverage68"], "reported (ideal 0.68)", None, "")
            add("T1 95 % interval coverage (calibration)", t["coverage95"], "reported (ideal 0.95)", None, "")
            if "lesion" in t:
                add("T1 MAE in cartilage lesions (ms)", t["lesion"]["mae"], "reported", None, "")
                r = t["lesion"].get("relative_sd_ratio")
                add("T1 relative SD, lesions / rest of the body", r, "larger on lesions (ratio > 1.2)",
                    None if r is None else r > 1.2, "")
            if m17:
                u = m17["targets"]["T1"]
                ok = (u["corr"] >= 0.9 * t["corr"] and u["l1"] <= 1.1 * t["l1"] and u["ssim"] >= 0.9 * t["ssim"])
                add("T1 r / l1 / SSIM at unseen FA 17 deg", u["corr"], "within 10 % of FA 20", ok, "")
        if two:
            add("T1 Pearson r, two flip angles (5 + 30 deg)", two["targets"]["T1"]["corr"], "reported", None, "0.984")
    elif task == "brain-t1t2":
        m = _get(metrics, "MPRAGE + GRE")
        if m:
            add("T1 MAE without CSF (ms)", m["targets"]["T1"]["mae"], "<= 50", m["targets"]["T1"]["mae"] <= 50, "52.7")
            add("T2 MAE without CSF (ms)", m["targets"]["T2"]["mae"], "<= 5", m["targets"]["T2"]["mae"] <= 5, "5.4")
            for k, loa in (("T1", 5.0), ("T2", 10.0)):
                ba = (m.get("bland_altman_roi_means") or {}).get(k)
                if ba:
                    add(f"{k} Bland-Altman bias, GM/WM/putamen/thalamus means (%)", ba["bias_pct"], "within +-1 %",
                        abs(ba["bias_pct"]) <= 1.0, "< 1 % (T1 putamen 1.2 %)")
                    worst = max(abs(ba["loa_pct"][0]), abs(ba["loa_pct"][1]))
                    add(f"{k} Bland-Altman limits of agreement (%)", worst, f"within +-{loa:g} %", worst <= loa, "")
            for k in ("T1", "T2"):
                les = m["targets"][k].get("lesion")
                if les:
                    add(f"{k} MAE in lesions (ms)", les["mae"], "reported", None, "")
                    r = les.get("relative_sd_ratio")
                    add(f"{k} relative SD, lesions / rest of the brain", r, "larger on lesions (ratio > 1.2)",
                        None if r is None else r > 1.2, "")
        mo = _get(metrics, "MPRAGE only")
        if mo:
            add("T1 MAE without CSF, MPRAGE only (ms)", mo["targets"]["T1"]["mae"], "reported", None, "")
            add("T2 MAE without CSF, MPRAGE only (ms)", mo["targets"]["T2"]["mae"], "reported", None, "")
    elif task == "fatwater-ipop":
        m = next(iter(metrics.values()), None)
        if m:
            add("PDFF MAE (percentage points)", m["targets"]["PDFF"]["mae"], "<= 1.5", m["targets"]["PDFF"]["mae"] <= 1.5)
            by = m.get("R2s_mae_by_range") or {}
            below = next((v for k, v in by.items() if k.startswith("below")), None)
            above = next((v for k, v in by.items() if k.startswith("above")), None)
            add("R2* MAE where R2* < 200 1/s (1/s)", below, "<= 10", below is not None and below <= 10)
            if above is not None:
                add("R2* MAE where R2* >= 200 1/s (1/s)", above, "reported", None)
            add("B0 MAE (Hz)", m["targets"]["B0"]["mae"], "reported", None)
    elif task == "t2star":
        m = next(iter(metrics.values()), None)
        if m:
            c = (m.get("roi") or {}).get("cartilage", {}).get("T2s")
            add("T2* relative l1 in cartilage", c["l1"] if c else None, "<= 0.08", c is not None and c["l1"] <= 0.08)
            les = m["targets"]["T2s"].get("lesion")
            if les:
                add("T2* MAE in cartilage lesions (ms)", les["mae"], "reported", None)
                r = les.get("relative_sd_ratio")
                add("T2* relative SD, lesions / rest of the body", r, "larger on lesions (ratio > 1.2)",
                    None if r is None else r > 1.2)
    return rows


def meets_all(task: str, metrics: dict) -> bool:
    rows = check(task, metrics)
    return bool(rows) and all(ok for _, _, _, ok, _ in rows if ok is not None)
