"""The page driven in headless Chromium for the screenshots and the page
benchmark: a whole local system on free ports (or one already running at a
URL), a browser page, and the gestures both need."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

READY_TIMEOUT_S = 180.0
SOCCER_BALL = 805
BALL = (40, 144)  # the soccer ball in soccer.jpg at 227 px: centre


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


# Every port run_local listens on (the Segmenter shares the inpainter's; metrics
# are off), so a system already running on the default ports is left alone.
PORT_FLAGS = (
    "--http-port",
    "--classifier-port",
    "--inpainter-port",
    "--patchmatch-port",
    "--explainer-port",
)


def run_local_command() -> tuple[list[str], str]:
    """The command that starts `tools.run_local` on free ports, and its page's URL."""
    ports = [free_port() for _ in PORT_FLAGS]
    command = [sys.executable, "-m", "tools.run_local", "--no-metrics", "--http-host", "127.0.0.1"]
    for flag, port in zip(PORT_FLAGS, ports, strict=True):
        command += [flag, str(port)]
    return command, f"http://127.0.0.1:{ports[0]}"


@contextmanager
def local_system(url: str | None = None) -> Iterator[str]:
    """Yield the page's URL: `url` as given, or a system `tools.run_local` starts
    on free ports (stopped again at the end, SIGTERM and its grace period)."""
    if url:
        yield url.rstrip("/")
        return
    command, url = run_local_command()
    system = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not _ready(url):
            if system.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "the local system did not become ready (try `make run` to see why)"
                )
            time.sleep(0.5)
        yield url
    finally:
        system.terminate()
        system.wait(timeout=60)


@contextmanager
def browser_page(url: str, width: int, height: int) -> Iterator[object]:
    """A Chromium page of that size at `url`, its gallery shown."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if not chromium:
        raise RuntimeError("needs Debian's chromium: apt-get install chromium")
    phone = width < 700
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox"]
        )
        context = browser.new_context(
            viewport={"width": width, "height": height}, has_touch=phone, is_mobile=phone
        )
        page = context.new_page()
        page.goto(url + "/")
        page.wait_for_selector(".thumb", timeout=20_000)
        yield page
        browser.close()


IDLE = "document.querySelector('#compare').getAttribute('aria-busy') === 'false'"


def open_photo(page, photo_id: str, title: str) -> None:
    page.click(f'.thumb[data-image-id="{photo_id}"]')
    page.wait_for_function(
        f"""() => document.querySelector('#original-caption').textContent.includes('{title}')
              && document.querySelector('#original-table tbody tr[data-class-id]') && {IDLE}""",
        timeout=30_000,
    )


def stroke(page, points: list[tuple[float, float]], edits_after: int, size: int = 22) -> None:
    """A brush stroke through `points` (pixels of the 227 px working copy); waits for its edit."""
    page.eval_on_selector(
        "#brush-size", "(e, v) => { e.value = v; e.dispatchEvent(new Event('input')); }", str(size)
    )
    box = page.locator("#paint-canvas").bounding_box()
    scale = box["width"] / 227
    page.mouse.move(box["x"] + points[0][0] * scale, box["y"] + points[0][1] * scale)
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=4)
    page.mouse.up()
    page.wait_for_function(
        f"document.querySelector('#modified-caption').textContent.startsWith('{edits_after} edit') && {IDLE}",
        timeout=30_000,
    )


def remove_the_ball(page) -> None:
    x, y = BALL
    stroke(page, [(x - 14, y - 5), (x + 14, y - 5)], 1)
    stroke(page, [(x - 14, y + 5), (x + 14, y + 5)], 2)


def show_class_map(page, class_id: int) -> None:
    page.click(f'#modified-table tr[data-class-id="{class_id}"]')
    page.wait_for_function(f"!document.getElementById('map-legend').hidden && {IDLE}")
