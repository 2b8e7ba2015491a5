"""The PatchMatch engine's C unit tests (services/patchmatch/tests_c), built and
run under AddressSanitizer + UndefinedBehaviorSanitizer, as part of `make test`."""

from __future__ import annotations

import shutil
import subprocess

from tests.support.processes import REPO
from tests.support.tools import require

PATCHMATCH_DIR = REPO / "services" / "patchmatch"


def test_c_unit_tests_pass_under_sanitizers():
    require(
        shutil.which("make") is not None and shutil.which("cc") is not None,
        "make and a C compiler",
        "apt-get install build-essential",
    )
    result = subprocess.run(
        ["make", "-C", str(PATCHMATCH_DIR), "test-c"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, report
    assert "all PatchMatch C tests passed" in result.stdout, report
    # the sanitizers report to stderr; a clean run prints nothing there
    assert "runtime error" not in result.stderr, report
    assert "AddressSanitizer" not in result.stderr, report
