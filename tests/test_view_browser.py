"""The space-time viewer in a real browser: Debian's Chromium, headless, driven by playwright (no browser download).

Starts ``mononerf.view`` on a tiny synthetic run (CPU), opens the page, waits for the full render, moves the time
slider with the keyboard and checks that the rendered canvas changes with time and is not a blank canvas; the server
then stops and frees its port. Skips with the reason when viser, playwright or Chromium are missing (Chromium is
installed with ``apt-get install -y chromium`` first when the tests run as root on a Debian system).

``MONONERF_VIEWER_SCREENSHOT=docs/viewer.png`` also writes the README's screenshot of the page, and
``MONONERF_VIEWER_RUN=RUN_DIR`` uses that run instead of the tiny one (a better-trained run for the screenshot).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser")


def find_chromium(install: bool = True) -> str | None:
    """Path of a Chromium executable; tries ``apt-get install -y chromium`` once when missing (root, apt)."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    if install and shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        try:
            subprocess.run(["apt-get", "install", "-y", "chromium"], check=False, timeout=900,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        except (OSError, subprocess.TimeoutExpired):
            return None
        return find_chromium(install=False)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _png(data: bytes) -> np.ndarray:
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)


@pytest.mark.slow
def test_viewer_in_headless_chromium(tmp_path):
    pytest.importorskip("viser", reason="the viewer needs viser: pip install -e '.[view]'")
    pw_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (the dev extra)")
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium found and none could be installed (apt-get install -y chromium)")

    from mononerf.view.cli import build_parser, start_viewer
    from mononerf.view.server import check_port_free
    from tests.test_view import tiny_view_run

    run_dir = os.environ.get("MONONERF_VIEWER_RUN") or tiny_view_run(tmp_path)
    port = free_port()
    args = build_parser().parse_args([str(run_dir), "--port", str(port), "--host", "127.0.0.1", "--device", "cpu",
                                      "--coarse-height", "8", "--fine-height",
                                      "96" if os.environ.get("MONONERF_VIEWER_RUN") else "40", "--n-samples", "8"])
    viewer = start_viewer(args, verbose=False)
    last_frame = float(viewer.num_frames - 1)
    try:
        with pw_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=[
                "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"])
            try:
                page = browser.new_page(viewport={"width": 960, "height": 600})
                page.goto(f"http://127.0.0.1:{port}")

                def shot_when(frame: float) -> np.ndarray:
                    # the server rendered the full image of that time, and the page shows its status line (sent
                    # after the image): then give the canvas a moment to draw it
                    viewer.wait_render(lambda i: i.fine and abs(i.frame - frame) < 1e-6, timeout=120)
                    page.wait_for_function(
                        "text => [...document.querySelectorAll('input')].some(e => e.value.startsWith(text))",
                        arg=f"frame {frame:.2f} · full", timeout=30_000)
                    time.sleep(1.0)
                    return _png(page.screenshot())

                shot_when(0.0)
                threads = [c.thread for c in viewer._clients.values()]
                close = page.locator(".mantine-Notification-root button")  # the "software WebGL" notice
                if close.count():
                    close.first.click()
                    time.sleep(0.5)
                shot = os.environ.get("MONONERF_VIEWER_SCREENSHOT")
                if shot:  # the page as a user sees it first: frustums of the training cameras and the render
                    page.screenshot(path=shot)
                # toggle the training cameras off in the panel: the canvas then shows the render alone
                page.get_by_role("checkbox", name="Training cameras").click()
                deadline = time.monotonic() + 20
                while viewer._cams.value and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert not viewer._cams.value
                time.sleep(1.0)
                first = _png(page.screenshot())
                # move the time slider: focus its thumb and press End (the last frame)
                thumb = page.get_by_role("slider", name="Time (frame)")
                if not thumb.count():  # the thumb may not carry the label: the first slider of the panel is the time
                    thumb = page.get_by_role("slider").first
                thumb.focus()
                page.keyboard.press("End")
                second = shot_when(last_frame)
                assert viewer.frame == pytest.approx(last_frame)
                # a blank canvas: the same page without the rendered background image
                for c in list(viewer._clients.values()):
                    c.client.scene.set_background_image(None)
                time.sleep(1.5)
                blank = _png(page.screenshot())
                # the panel's other controls reach the renderer: what is shown, and the scene of a multi-scene run
                page.get_by_role("combobox", name="Show").click()
                page.get_by_role("option", name="induced flow").click()
                viewer.wait_render(lambda i: i.fine and i.output == "flow", timeout=120)
                page.get_by_role("combobox", name="Scene").click()
                page.get_by_role("option", name=viewer.names[1]).click()
                info = viewer.wait_render(lambda i: i.fine and i.scene == viewer.names[1], timeout=120)
                assert info.output == "flow" and viewer.view.scene == 1
            finally:
                browser.close()
    finally:
        viewer.stop()

    # the region left of the control panel and below the notifications: the 3D canvas
    if os.environ.get("MONONERF_VIEWER_DEBUG"):
        for name, img in (("first", first), ("second", second), ("blank", blank)):
            from PIL import Image

            Image.fromarray(img.astype(np.uint8)).save(Path(os.environ["MONONERF_VIEWER_DEBUG"]) / f"{name}.png")
    region = (slice(200, 560), slice(60, 440))
    a, b, c = (x[region] for x in (first, second, blank))
    time_change = float(np.abs(a - b).mean())
    vs_blank = float(np.abs(a - c).mean())
    assert time_change > 0.5, f"the render did not change between frames 0 and {last_frame}: {time_change:.3f}"
    assert vs_blank > 10.0 and float(np.abs(b - c).mean()) > 10.0, f"render vs blank canvas: {vs_blank:.2f}"
    # the server stopped: its render threads ended and the port is free again
    assert threads and not any(t.is_alive() for t in threads)
    check_port_free("127.0.0.1", port)
