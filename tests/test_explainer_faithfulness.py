"""The faithfulness command over a folder, against the real services."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from services.explainer.faithfulness import CURVE_FRACTIONS, auc
from tests.support.processes import REPO


def test_auc_is_the_trapezoid_area_over_the_fraction():
    assert auc([1.0] * len(CURVE_FRACTIONS)) == 1.0
    assert abs(auc(list(CURVE_FRACTIONS)) - 0.5) < 1e-9


def test_the_command_prints_the_table_and_writes_per_image_results(
    tmp_path, images_dir, classifier_service, inpainter_service
):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(images_dir / "soccer.jpg", folder)
    (folder / "notes.txt").write_text("not an image: skipped")
    out = tmp_path / "faithfulness.json"
    run = subprocess.run(
        [
            sys.executable, "-m", "services.explainer.faithfulness",
            "--images", str(folder),
            "--classifier", classifier_service.address,
            "--inpainter", inpainter_service.address,
            "--window", "76", "--stride", "38",
            "--json", str(out),
        ],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "soccer.jpg: target 'rugby ball' (rank 2" in run.stdout
    for method in ("hinder", "random", "cam_least", "support", "cam"):
        assert f"\n  {method} " in run.stdout
    result = json.loads(out.read_text())["soccer.jpg"]
    assert result["target_id"] == 768
    assert len(result["removal"]["hinder"]) == 5


def test_the_command_refuses_an_empty_folder(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "services.explainer.faithfulness", "--images", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2
    assert "no images in" in run.stderr
