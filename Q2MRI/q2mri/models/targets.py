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

    def add(what, value, target, ok, seed=""):  # noqa: E306
        rows.append((what, value, target, None if (value is None or ok is None) else bool(ok), seed))

    def uncertainty(label: str, t: dict, name: str = "T1", lesion_ratio: bool = True):
        add(f"{name} 68 % interval coverage, {label}", t["coverage68"], "0.60-0.75", 0.60 <= t["coverage68"] <= 0.75, "")
        add(f"{name} 95 % interval coverage, {label}", t["coverage95"], "0.92-0.97", 0.92 <= t["coverage95"] <= 0.97, "")
        if "lesion" in t:
            add(f"{name} MAE in lesions, {label}", t["lesion"]["mae"], "reported", None, "")
            r = t["lesion"].get("relative_sd_ratio")
            if lesion_ratio:
                add(f"{name} relative SD, lesions / rest, {label}", r, ">= 1.2", None if r is None else r >= 1.2, "")

    if task == "spgr-t1":
        m20, m17 = _get(metrics, "FA 20"), _get(metrics, "FA 17")
        m30, two = _get(metrics, "FA 30"), _get(metrics, "two flip angles 5")
        real = _get(metrics, "two flip angles 3")
        if m20:
            t = m20["targets"]["T1"]
            add("T1 Pearson r, FA 20 deg", t["corr"], ">= 0.99", t["corr"] >= 0.99, "0.978")
            add("T1 relative l1, FA 20 deg", t["l1"], "<= 0.05", t["l1"] <= 0.05, "0.095")
            add("T1 SSIM, FA 20 deg", t["ssim"], ">= 0.90", t["ssim"] >= 0.90, "0.815")
            b = m20["targets"]["B1"]
            add("B1 Pearson r, FA 20 deg", b["corr"], ">= 0.95 (aim 0.99)", b["corr"] >= 0.95, "")
            s = m20.get("T1_error_slope_per_0.1_B1")
            if s is not None:
                add("T1 error slope per 0.1 of B1 (%), FA 20 deg", 100 * s, "abs <= 2 %", abs(100 * s) <= 2.0, "")
            uncertainty("FA 20 deg", t)
            if m17:
                u = m17["targets"]["T1"]
                ok = (u["corr"] >= 0.9 * t["corr"] and u["l1"] <= 1.1 * t["l1"] and u["ssim"] >= 0.9 * t["ssim"])
                add("T1 r / l1 / SSIM at unseen FA 17 deg (r shown)", u["corr"], "within 10 % of FA 20", ok, "")
        for label, m in (("5 + 20 deg", two), ("3 + 20 deg, TR 15 ms", real)):
            if not m:
                continue
            t, b = m["targets"]["T1"], m["targets"]["B1"]
            if label.startswith("5"):
                add(f"T1 Pearson r, two flip angles {label}", t["corr"], ">= 0.99", t["corr"] >= 0.99, "0.984")
                add(f"T1 relative l1, two flip angles {label}", t["l1"], "<= 0.04", t["l1"] <= 0.04, "")
                add(f"B1 Pearson r, two flip angles {label}", b["corr"], ">= 0.95", b["corr"] >= 0.95, "")
                uncertainty(f"two flip angles {label}", t, lesion_ratio=False)
            d = m.get("despot1_no_b1_T1")
            if d:
                ok = t["l1"] <= d["l1"] and t["corr"] >= d["corr"]
                add(f"T1 l1, two flip angles {label}, against DESPOT1 without B1 ({d['l1']:.3f}, r {d['corr']:.3f})",
                    t["l1"], "never worse (l1 and r)", ok, "")
        if m30 and m30.get("resynthesis"):
            rs = m30["resynthesis"]
            worst = min(rs.values())
            add("re-synthesis from the 30 deg prediction: r at 5 / 10 / 20 deg (lowest)", worst, ">= 0.97", worst >= 0.97,
                "papers/000 Table 2")
    elif task == "brain-t1t2":
        m = _get(metrics, "MPRAGE + GRE")
        if m:
            add("T1 MAE without CSF (ms)", m["targets"]["T1"]["mae"], "<= 50", m["targets"]["T1"]["mae"] <= 50, "52.7")
            add("T2 MAE without CSF (ms)", m["targets"]["T2"]["mae"], "<= 5", m["targets"]["T2"]["mae"] <= 5, "5.4")
            for k in ("T1", "T2"):
                ba = (m.get("bland_altman_roi_means") or {}).get(k)
                if ba:
                    add(f"{k} Bland-Altman bias, GM/WM/putamen/thalamus means (%)", ba["bias_pct"], "within +-1 %",
                        abs(ba["bias_pct"]) <= 1.0, "< 1 % (T1 putamen 1.2 %)")
                    worst = max(abs(ba["loa_pct"][0]), abs(ba["loa_pct"][1]))
                    add(f"{k} Bland-Altman limits of agreement (%)", worst, "reported", None, "")
            uncertainty("MPRAGE + GRE + FLAIR", m["targets"]["T1"])
            uncertainty("MPRAGE + GRE + FLAIR", m["targets"]["T2"], "T2", lesion_ratio=False)
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
            uncertainty("liver pair", m["targets"]["PDFF"], "PDFF", lesion_ratio=False)
    elif task == "t2star":
        m = next(iter(metrics.values()), None)
        if m:
            c = (m.get("roi") or {}).get("cartilage", {}).get("T2s")
            add("T2* relative l1 in cartilage", c["l1"] if c else None, "<= 0.08", c is not None and c["l1"] <= 0.08)
            uncertainty("knee-t2star", m["targets"]["T2s"], "T2*")
    return rows


def meets_all(task: str, metrics: dict) -> bool:
    rows = check(task, metrics)
    return bool(rows) and all(ok for _, _, _, ok, _ in rows if ok is not None)
