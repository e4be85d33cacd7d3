"""Screenshots of the live page and of `nst serve`'s gallery for the README, in headless Chromium.

    NST_IMAGES=/work/shared/images python docs/make_web_figures.py
writes docs/figures/web_live.jpg (Tübingen × The Starry Night at 256 px, the study panels open)
and docs/figures/web_gallery.jpg (three 160 px runs, two of them compared, a fourth running). Needs
'.[web]', playwright and Debian's chromium (/usr/bin/chromium); about 2 minutes on 2 cores, 1½ once
Numba has cached its kernels (120 s and 91 s, measured on a shared 2-core machine).
"""
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from web_client import CHROMIUM, CHROMIUM_ARGS, Process, base_of, post_form, request  # noqa: E402

FIGURES = ROOT / "docs" / "figures"
from shared_images import image  # noqa: E402


def live_page(browser, tmp):
    proc = Process(["transfer", image("tubingen.jpg"), image("starry_night.jpg"), "-o", tmp / "live.png",
                    "--size", "256", "--start-size", "181", "--iterations", "50", "--web"])
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900}, bypass_csp=True)
        page.goto(proc.url())
        page.wait_for_function("nst.live.status.it >= 5", timeout=600_000)
        page.select_option("#gram-layer", "block2_conv1")
        for box in ("#show-gram", "#show-grad", "#show-features"):
            page.check(box)
        page.wait_for_function("nst.live.status.it >= 62", timeout=900_000)
        page.wait_for_function("(document.querySelector('#features').src || '').startsWith('data:')")
        time.sleep(1)
        page.screenshot(path=str(FIGURES / "web_live.jpg"), full_page=True, type="jpeg", quality=80)
        page.click("#stop")
        proc.wait(120)
    finally:
        proc.kill()


def gallery(browser, tmp):
    proc = Process(["serve", "--port", "0", "--outdir", tmp / "runs"])
    try:
        url = proc.url(600)
        base = base_of(url)
        photo = ("content", "tubingen.jpg", (image("tubingen.jpg")).read_bytes())
        runs = [([], "starry_night.jpg"), ([], "shipwreck.jpg"), ([("keep-colors", "luminance")], "starry_night.jpg")]
        for more, painting in runs:
            code, r = post_form(base + "/api/runs", [("size", "160"), ("scales", "1"), ("iterations", "40"), *more],
                                [photo, ("style", painting, (image(painting)).read_bytes())])
            assert code == 201, r
        while True:
            rows = json.loads(request(base + "/api/runs")[1])["runs"]
            if len(rows) == 3 and all(r["status"] == "done" for r in rows):
                break
            time.sleep(2)
        code, r = post_form(base + "/api/runs", [("size", "160"), ("scales", "1"), ("iterations", "400"),
                                                 ("keep-colors", "luminance")],
                            [photo, ("style", "shipwreck.jpg", (image("shipwreck.jpg")).read_bytes())])
        assert code == 201, r                                 # a fourth run, running: its card's thumbnail
        page = browser.new_page(viewport={"width": 1280, "height": 900}, bypass_csp=True)
        page.goto(url)
        page.wait_for_selector(".run[data-status='done'] input.pick")
        page.locator("input.pick").nth(0).check()
        page.locator("input.pick").nth(2).check()
        page.click("#compare")
        page.wait_for_selector("#compare-table tr", timeout=300_000)
        running = f".run[data-name='{r['name']}'] img"
        page.wait_for_function(f"(document.querySelector(\"{running}\").src || '').includes('/thumb') && "
                               f"document.querySelector(\"{running}\").naturalWidth > 0", timeout=300_000)
        page.wait_for_function(f"parseInt(document.querySelector(\"{running}\").src.split('v=')[1]) >= 8",
                               timeout=300_000)      # its eighth thumbnail: the painting's marks show
        time.sleep(2.5)
        page.screenshot(path=str(FIGURES / "web_gallery.jpg"), full_page=True, type="jpeg", quality=80)
    finally:
        proc.kill()


def main():
    from playwright.sync_api import sync_playwright
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        which = sys.argv[1:] or ["live", "gallery"]          # or one of them
        if "live" in which:
            live_page(browser, Path(tmp))
        if "gallery" in which:
            gallery(browser, Path(tmp))
        browser.close()


if __name__ == "__main__":
    main()
