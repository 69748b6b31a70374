"""The README's picture of the web app: the bundled sample with predicted T1 over it, in Chromium.

    .venv/bin/python scripts/make_web_image.py
"""
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Testing" / "Python"))
from web_util import ARGS, CHROMIUM, AppProcess, wait_for_views  # noqa: E402


async def main() -> None:
    from playwright.async_api import async_playwright
    app = AppProcess()
    try:
        app.wait_serving()
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = await browser.new_page(viewport={"width": 1400, "height": 860})
            await page.goto(app.url)
            await wait_for_views(page)
            await page.click("#q2-run")
            await page.wait_for_function("document.querySelector('#q2-status').innerText.startsWith('done')",
                                         timeout=300000)
            await page.wait_for_timeout(1500)
            out = ROOT / "docs" / "images" / "web-app.png"
            await page.screenshot(path=str(out))
            await browser.close()
            print("wrote", out)
    finally:
        app.stop()


if __name__ == "__main__":
    asyncio.run(main())
