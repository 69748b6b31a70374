"""The web app end to end: `q2mri app` served, driven by a real headless Chromium (Debian's),
as a person would use it. Screenshots are kept in out/test-artifacts/web/."""
from __future__ import annotations

import asyncio
import csv
import gzip
import json
import zipfile

import nibabel as nib
import numpy as np
import pytest

from web_util import (ARGS, CHROMIUM, ROOT, VIEW, AppProcess, get_state, next_frame, set_state, view_pixels,
                      wait_for_views)

ARTIFACTS = ROOT / "out" / "test-artifacts" / "web"
TISSUE_VIEW = 1          # Quad View: the view in the sample's acquisition plane (sagittal knee)


def _lipari() -> np.ndarray:
    from importlib import resources
    text = resources.files("cmcrameri").joinpath("cmaps", "lipari.txt").read_text()
    return np.round(np.loadtxt(text.splitlines()) * 255)


def _near(pixels, table, tol=10.0):
    d = np.abs(pixels[:, None, :].astype(float) - table[None, :, :]).max(-1)
    return d.min(1) <= tol


@pytest.fixture(scope="module")
def app():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    proc = AppProcess(log=ARTIFACTS / "server.log")
    try:
        proc.wait_serving()
        yield proc
    finally:
        proc.stop()


def run(coro):
    return asyncio.run(coro)


async def _page(p, app):
    browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    page = await browser.new_page(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    await page.goto(app.url)
    await page.wait_for_selector("#q2-run")
    await wait_for_views(page)
    return browser, page


async def _predict(page):
    await page.click("#q2-run")
    await page.wait_for_function("document.querySelector('#q2-status').innerText.startsWith('done')", timeout=120000)


def test_starts_renders_the_sample_and_then_the_map_overlay_with_its_legend(app):
    from playwright.async_api import async_playwright

    async def go():
        async with async_playwright() as p:
            browser, page = await _page(p, app)
            anatomy = await view_pixels(page, TISSUE_VIEW)
            await page.screenshot(path=str(ARTIFACTS / "01-start.png"))
            await _predict(page)
            await page.wait_for_timeout(1000)
            overlay = await view_pixels(page, TISSUE_VIEW)
            await page.screenshot(path=str(ARTIFACTS / "02-overlay.png"))
            await browser.close()
            return anatomy, overlay

    anatomy, overlay = run(go())
    table = _lipari()
    w = overlay.shape[1]
    grey = anatomy[:, : int(0.75 * w)].reshape(-1, 3)
    lit = grey.max(1) > 30
    assert lit.sum() > 2000                                   # the sample's anatomy is on screen
    assert np.all(np.ptp(grey[lit].astype(int), axis=1) <= 3)  # and it is grey before prediction
    tissue = overlay[:, : int(0.75 * w)].reshape(-1, 3)
    colour = np.ptp(tissue.astype(int), axis=1) > 20
    assert colour.sum() > 0.3 * lit.sum()                      # the overlay is coloured ...
    legend = overlay[:, int(0.9 * w):].reshape(-1, 3)
    assert _near(legend, table[-30:]).sum() > 20 and _near(legend, table[:30]).sum() > 20   # ... with a lipari legend


def test_flip_angle_slider_changes_the_synthesized_view_in_the_expected_direction(app):
    from playwright.async_api import async_playwright

    # papers/000 A.4 with TR 20 ms: from 2 to 8 degrees the SPGR signal rises by 40 % or more for
    # every tissue with T1 between 100 and 4500 ms (the sample's range), so the view gets brighter.
    t1 = np.linspace(100, 4500, 200)
    e1 = np.exp(-20.0 / t1)
    spgr = lambda a: np.sin(np.deg2rad(a)) * (1 - e1) / (1 - np.cos(np.deg2rad(a)) * e1)
    assert np.all(spgr(8) > 1.4 * spgr(2))

    async def go():
        async with async_playwright() as p:
            browser, page = await _page(p, app)
            if not await get_state(page, "q2_map_names"):
                await _predict(page)
            await set_state(page, "q2_opacity", 0.0)
            await set_state(page, "q2_show_synth", True)
            await set_state(page, "q2_fa", 2)
            await page.wait_for_timeout(1500)
            dark = await view_pixels(page, TISSUE_VIEW)
            await set_state(page, "q2_fa", 8)
            await next_frame(page, TISSUE_VIEW)
            await page.wait_for_timeout(800)
            bright = await view_pixels(page, TISSUE_VIEW)
            await page.screenshot(path=str(ARTIFACTS / "03-synthesized.png"))
            await set_state(page, "q2_show_synth", False)
            await set_state(page, "q2_opacity", 0.6)
            await browser.close()
            return dark, bright

    dark, bright = run(go())
    w = dark.shape[1]
    region = (slice(None), slice(0, int(0.75 * w)))
    assert bright[region].mean() > 1.2 * dark[region].mean()


def test_painting_an_roi_fills_the_table_with_the_numpy_mean(app, tmp_path):
    from playwright.async_api import async_playwright

    async def go():
        async with async_playwright() as p:
            browser, page = await _page(p, app)
            if not await get_state(page, "q2_map_names"):
                await _predict(page)
            if await page.locator("text=Add segment").count():
                await page.click("text=Add segment")
            await page.click("button:has(.mdi-brush)")
            box = await (await page.query_selector_all(VIEW))[TISSUE_VIEW].bounding_box()
            cx, cy = box["x"] + 0.45 * box["width"], box["y"] + 0.5 * box["height"]
            await page.mouse.move(cx - 40, cy)
            await page.mouse.down()
            for k in range(20):
                await page.mouse.move(cx - 40 + 4 * k, cy + (k % 3), steps=2)
            await page.mouse.up()
            await page.wait_for_function("(window.trame.state.get('q2_stats') || []).some(r => +r.Voxels > 20)",
                                         timeout=20000)
            stats = await get_state(page, "q2_stats")
            downloads = {}
            for ident in ("q2-dl-labelmap", "q2-dl-maps", "q2-dl-table", "q2-dl-view"):
                await page.click("text=Downloads") if not await page.locator(f"#{ident}").is_visible() else None
                async with page.expect_download() as info:
                    await page.click(f"#{ident}")
                d = await info.value
                path = tmp_path / d.suggested_filename
                await d.save_as(path)
                downloads[ident] = path
            await page.screenshot(path=str(ARTIFACTS / "04-roi.png"))
            await browser.close()
            return stats, downloads

    stats, files = run(go())
    label = np.asarray(nib.load(files["q2-dl-labelmap"]).dataobj) > 0
    with zipfile.ZipFile(files["q2-dl-maps"]) as z:
        z.extract("T1.nii.gz", tmp_path)
    t1 = np.asarray(nib.load(tmp_path / "T1.nii.gz").dataobj, dtype=np.float64)
    assert label.shape == t1.shape and label.sum() > 20
    row = next(r for r in stats if r["Map"] == "T1")
    assert int(row["Voxels"]) == label.sum()
    assert float(row["Mean"]) == pytest.approx(t1[label].mean(), rel=1e-3)
    with open(files["q2-dl-table"]) as f:
        rows = list(csv.DictReader(f))
    assert float(next(r for r in rows if r["Map"] == "T1")["Mean"]) == pytest.approx(t1[label].mean(), rel=1e-5)
    assert files["q2-dl-view"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _nifti_bytes(arr: np.ndarray, spacing=(1.0, 1.0, 1.0)) -> bytes:
    img = nib.Nifti1Image(arr, np.diag([*spacing, 1.0]))
    return gzip.compress(img.to_bytes())


def test_cancel_stops_a_run_and_adds_nothing(app, tmp_path):
    from playwright.async_api import async_playwright
    rng = np.random.default_rng(0)
    big = (rng.uniform(100, 1000, (192, 192, 160))).astype(np.uint16)      # long enough to cancel
    src = tmp_path / "long_scan.nii.gz"
    src.write_bytes(_nifti_bytes(big))
    (tmp_path / "long_scan.json").write_text(json.dumps({"FlipAngle": 20, "RepetitionTime": 0.02, "EchoTime": 0.00003,
                                                         "MagneticFieldStrength": 3}))
    before = src.read_bytes()

    async def go():
        async with async_playwright() as p:
            browser, page = await _page(p, app)
            maps_before = await get_state(page, "q2_map_names")
            await page.set_input_files("#q2-upload", [str(src), str(tmp_path / "long_scan.json")])
            await page.wait_for_function("document.querySelector('#q2-status').innerText.includes('long_scan')",
                                         timeout=60000)
            await page.click("#q2-run")
            await page.wait_for_function("window.trame.state.get('q2_progress') > 0", timeout=120000)
            await page.click("#q2-cancel")
            await page.wait_for_function("document.querySelector('#q2-status').innerText.startsWith('cancelled')",
                                         timeout=10000)
            after = await get_state(page, "q2_map_names")
            running = await get_state(page, "q2_running")
            await browser.close()
            return maps_before, after, running

    maps_before, maps_after, running = run(go())
    assert maps_after == maps_before and running is False
    assert src.read_bytes() == before                       # the user's file is untouched


@pytest.mark.parametrize("case", ["not-an-image", "corrupt-nifti", "mismatched-grids"])
def test_a_bad_upload_gives_one_clear_message_and_the_server_keeps_serving(app, tmp_path, case):
    from playwright.async_api import async_playwright
    if case == "not-an-image":
        files = [tmp_path / "notes.txt"]
        files[0].write_text("not an image")
        expect = "not an image Q2MRI reads"
    elif case == "corrupt-nifti":
        files = [tmp_path / "broken.nii.gz"]
        files[0].write_bytes(gzip.compress(b"\x00" * 400))
        expect = "could not be read"
    else:
        files = [tmp_path / "a.nii.gz", tmp_path / "b.nii.gz"]
        files[0].write_bytes(_nifti_bytes(np.ones((20, 20, 5), np.float32)))
        files[1].write_bytes(_nifti_bytes(np.ones((24, 20, 5), np.float32)))
        expect = "different grids"

    async def go():
        async with async_playwright() as p:
            browser, page = await _page(p, app)
            await set_state(page, "q2_show_message", False)
            await set_state(page, "q2_message", "")
            await page.set_input_files("#q2-upload", [str(f) for f in files])
            await page.wait_for_function("document.querySelector('#q2-message-text') && "
                                         "document.querySelector('#q2-message-text').innerText.length > 0",
                                         timeout=30000)
            text = await page.inner_text("#q2-message-text")
            await page.screenshot(path=str(ARTIFACTS / f"05-bad-upload-{case}.png"))
            await browser.close()
            # a fresh page is served and renders after the failed action
            browser, page = await _page(p, app)
            ok = await page.is_visible("#q2-run")
            await browser.close()
            return text, ok

    text, ok = run(go())
    assert expect in text and "\n" not in text.strip() and "Traceback" not in text
    assert ok and app.alive()


def test_a_zipped_dicom_series_uploads_with_its_acquisition_from_the_tags(app, tmp_path):
    from playwright.async_api import async_playwright

    from dicom_util import write_dicom_series
    vol = (np.random.default_rng(1).uniform(50, 900, (6, 40, 48))).astype(np.uint16)
    folder = write_dicom_series(tmp_path / "series", vol, (1.2, 1.2, 3.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1),
                                {"0018|1314": "14", "0018|0080": "18.5", "0018|0081": "2.5", "0018|0087": "3"},
                                "1.2.826.0.1.3680043.2.1125.77")
    zpath = tmp_path / "knee_dicom.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for f in sorted(folder.iterdir()):
            z.write(f, f"series/{f.name}")

    async def go():
        async with async_playwright() as p:
            browser, page = await _page(p, app)
            await page.set_input_files("#q2-upload", [str(zpath)])
            await page.wait_for_function("document.querySelector('#q2-status').innerText.includes('knee_dicom')",
                                         timeout=60000)
            acq = [await get_state(page, f"q2_acq_0_{k}") for k in ("flip_angle_deg", "tr_ms", "te_ms")]
            # the maps go back as DICOM derived from the uploaded series (Logic.exportDicom)
            await _predict(page)
            files = {}
            for ident in ("q2-dl-dicom", "q2-dl-maps"):
                await page.click("text=Downloads") if not await page.locator(f"#{ident}").is_visible() else None
                async with page.expect_download() as info:
                    await page.click(f"#{ident}")
                d = await info.value
                files[ident] = tmp_path / d.suggested_filename
                await d.save_as(files[ident])
            await browser.close()
            return acq, files

    acq, files = run(go())
    assert acq == ["14", "18.5", "2.5"]
    import pydicom
    with zipfile.ZipFile(files["q2-dl-dicom"]) as z:
        assert {"PM_T1.dcm", "PM_PD.dcm", "PM_B1.dcm", "PM_T1_sd.dcm"} <= set(z.namelist())
        z.extract("PM_T1.dcm", tmp_path)
    with zipfile.ZipFile(files["q2-dl-maps"]) as z:
        z.extract("T1.nii.gz", tmp_path)
    pm = pydicom.dcmread(tmp_path / "PM_T1.dcm")
    assert pm.SOPClassUID == "1.2.840.10008.5.1.4.1.1.30" and pm.SeriesDescription == "Q2MRI T1 [ms] (spgr-t1)"
    assert pm.StudyInstanceUID == "1.2.826.0.1.3680043.2.1125.1"
    t1 = np.asarray(nib.load(tmp_path / "T1.nii.gz").dataobj, dtype=np.float32)
    # the same float values (frame order and orientation aside; the geometry is checked in test_dicom)
    assert np.array_equal(np.sort(pm.pixel_array.astype(np.float32).ravel()), np.sort(t1.ravel()))
