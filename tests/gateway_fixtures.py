"""Fixtures of the gateway tests: the real gateway (`python -m gateway`, gunicorn)
on a free loopback port, in front of the real services of tests/conftest.py.

tests/conftest.py imports the fixtures from here.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import numpy as np
import pytest
import requests
from PIL import Image

from tests.support.processes import ServiceProcess, free_port


class GatewayProcess(ServiceProcess):
    """`python -m gateway` on a free port, ready when /readyz says so. Without an
    `explainer` address it points at a port nobody listens on (explain: 503)."""

    def __init__(
        self,
        classifier: str,
        backends: list[str],
        wait_ready: bool = True,
        explainer: str | None = None,
        **env,
    ):
        port = free_port()
        explainer = explainer or f"127.0.0.1:{free_port()}"
        self.url = f"http://127.0.0.1:{port}"
        self._wait_for_readyz = wait_ready
        super().__init__(
            "gateway",
            port=port,
            ready_url=f"{self.url}/readyz" if wait_ready else f"{self.url}/healthz",
            env={
                "IC_HTTP_HOST": "127.0.0.1",
                "IC_HTTP_PORT": str(port),
                "IC_CLASSIFIER_ADDR": f"dns:///{classifier}",
                "IC_INPAINT_BACKENDS": ",".join(f"dns:///{b}" for b in backends),
                "IC_EXPLAINER_ADDR": f"dns:///{explainer}",
                # The OpenCV service (the first backend in these tests) offers GrabCut.
                "IC_SEGMENTER_ADDR": f"dns:///{backends[0]}" if backends else "",
                "IC_GATEWAY_WORKERS": "1",
                "IC_BACKEND_REFRESH_S": "0.5",
                "IC_LOG_LEVEL": "INFO",
                **env,
            },
        )

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, timeout=60, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return requests.post(self.url + path, timeout=60, **kwargs)


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def stroke_mask(height: int, width: int, rows=slice(100, 115), cols=slice(40, 190)) -> np.ndarray:
    """A 15 px horizontal brush stroke (255 = remove)."""
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[rows, cols] = 255
    return mask


def wait_until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")


@pytest.fixture(scope="session")
def gateway_service(
    classifier_service, inpainter_service, patchmatch_service, explainer_service, images_dir
):
    """The gateway in front of the session's classifier, inpainter, patchmatch and explainer."""
    with GatewayProcess(
        classifier_service.address,
        [inpainter_service.address, patchmatch_service.address],
        explainer=explainer_service.address,
        IC_GALLERY_DIR=str(images_dir),
    ) as proc:
        yield proc


@pytest.fixture(scope="session")
def stroke_png(photo_rgb) -> bytes:
    """A brush-stroke mask PNG of the gallery photos' size."""
    height, width = photo_rgb("soccer").shape[:2]
    return png_bytes(stroke_mask(height, width))
