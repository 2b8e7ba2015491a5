"""Checks of the page's files that need no browser: the colour map table is the
real inferno, every module import and page asset exists, and the Explain slot
is empty and hidden until its module fills it."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

from tools import gen_colormap

FRONTEND = Path(__file__).resolve().parents[1] / "frontend"
IMPORT = re.compile(r"""(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]""")


def test_colormap_module_is_generated_from_opencv_inferno():
    committed = gen_colormap.TARGET.read_text()
    assert committed == gen_colormap.render_module(gen_colormap.inferno_rgb())
    hex_digits = "".join(re.findall(r"'([0-9a-f]+)'", committed))
    lut = np.frombuffer(bytes.fromhex(hex_digits), dtype=np.uint8).reshape(256, 3)
    # Inferno: near-black to pale yellow, brightness rising all the way.
    assert tuple(lut[0]) == (0, 0, 4) and tuple(lut[255]) == (252, 255, 164)
    luma = lut @ np.array([0.299, 0.587, 0.114])
    assert np.all(np.diff(luma) > 0)


def test_every_module_import_resolves():
    modules = sorted((FRONTEND / "js").glob("*.js"))
    assert {
        "api.js",
        "app.js",
        "brush.js",
        "history.js",
        "colormap.js",
        "tables.js",
        "models.js",
    } <= {m.name for m in modules}
    for module in modules:
        for target in IMPORT.findall(module.read_text()):
            assert (module.parent / target).is_file(), f"{module.name} imports missing {target}"


class _PageScan(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.assets: list[str] = []
        self.ids: dict[str, dict[str, str | None]] = {}
        self.inside_explain = 0
        self.explain_content: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if self.inside_explain:
            self.explain_content.append(tag)
        for name in ("src", "href"):
            value = attributes.get(name)
            if value and not value.startswith(("#", "data:", "http")):
                self.assets.append(value)
        if "id" in attributes:
            self.ids[attributes["id"]] = attributes
        if attributes.get("id") == "explain-panel":
            self.inside_explain = 1

    def handle_endtag(self, tag):
        if self.inside_explain and tag == "section":
            self.inside_explain = 0

    def handle_data(self, data):
        if self.inside_explain and data.strip():
            self.explain_content.append(data.strip())


def test_page_assets_exist_and_explain_slot_is_empty():
    scan = _PageScan()
    scan.feed((FRONTEND / "index.html").read_text())
    assert scan.assets, "the page loads no assets"
    for asset in scan.assets:
        assert (FRONTEND / asset).is_file(), f"index.html refers to missing {asset}"
    explain = scan.ids["explain-panel"]
    assert "hidden" in explain
    assert scan.explain_content == []
    for control in (
        "upload-input",
        "brush-size",
        "backend-select",
        "cam-opacity",
        "size-select",
        "model-select",
        "compare-select",
    ):
        assert control in scan.ids, f"missing control #{control}"
    # The compare block stays hidden until a compare model is chosen (js/models.js).
    assert "hidden" in scan.ids["compare-block"]
