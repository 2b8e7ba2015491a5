"""`make venv`: which Python (tools/find_python.sh), what an existing
environment needs (tools/make_venv.py), and imports that follow the checkout
when it is copied or moved."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from tests.support.processes import REPO
from tools import make_venv
from tools.make_venv import Plan, VenvError, VenvState, decide

FIND_PYTHON = REPO / "tools" / "find_python.sh"
RUNNING = f"{sys.version_info.major}.{sys.version_info.minor}"
# The interpreter behind the test's virtual environment.
BASE_PYTHON = Path(os.path.realpath(sys._base_executable))


# -- which Python -------------------------------------------------------------


def supported_in_find_python() -> list[str]:
    text = FIND_PYTHON.read_text()
    return re.search(r"^SUPPORTED=\(([^)]*)\)", text, re.MULTILINE).group(1).split()


def test_the_supported_versions_agree_with_pyproject():
    spec = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert spec == ">=3.11,<3.14"
    assert supported_in_find_python() == ["3.13", "3.12", "3.11"]
    assert sorted(make_venv.SUPPORTED) == [(3, 11), (3, 12), (3, 13)]
    assert RUNNING in supported_in_find_python()


@pytest.fixture
def machine(tmp_path):
    """A PATH and a pyenv root that hold only what a test puts there."""
    path_dir = tmp_path / "bin"
    path_dir.mkdir()
    pyenv = tmp_path / "pyenv"
    (pyenv / "versions").mkdir(parents=True)
    # find_python.sh needs find and sort, nothing else from PATH.
    tools = tmp_path / "tools"
    tools.mkdir()
    for name in ("find", "sort"):
        (tools / name).symlink_to(shutil.which(name))

    def run(*args: str, python: str | None = None) -> subprocess.CompletedProcess:
        env = {"PATH": f"{path_dir}:{tools}", "PYENV_ROOT": str(pyenv), "HOME": str(tmp_path)}
        if python is not None:
            env["PYTHON"] = python
        return subprocess.run(
            [shutil.which("bash"), str(FIND_PYTHON), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return path_dir, pyenv, run


def inactive_pyenv_shim(path: Path) -> None:
    """What pyenv's shim does for a version that is installed but not selected."""
    name = path.name
    path.write_text(f'#!/bin/sh\necho "pyenv: {name}: command not found" >&2\nexit 127\n')
    path.chmod(0o755)


def test_the_newest_python_that_runs_is_chosen(machine):
    path_dir, _, run = machine
    (path_dir / f"python{RUNNING}").symlink_to(BASE_PYTHON)
    for version in supported_in_find_python():
        if version != RUNNING:
            inactive_pyenv_shim(path_dir / f"python{version}")
    done = run()
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(path_dir / f"python{RUNNING}")


def test_a_python_that_lies_about_its_version_is_not_taken(machine):
    path_dir, _, run = machine
    other = next(v for v in supported_in_find_python() if v != RUNNING)
    (path_dir / f"python{other}").symlink_to(BASE_PYTHON)  # really RUNNING
    (path_dir / f"python{RUNNING}").symlink_to(BASE_PYTHON)
    done = run()
    assert done.stdout.strip() == str(path_dir / f"python{RUNNING}")
    assert run(other).returncode == 1


def test_pyenv_versions_are_found_behind_an_inactive_shim(machine):
    path_dir, pyenv, run = machine
    inactive_pyenv_shim(path_dir / f"python{RUNNING}")
    installed = pyenv / "versions" / f"{RUNNING}.99" / "bin" / f"python{RUNNING}"
    installed.parent.mkdir(parents=True)
    installed.symlink_to(BASE_PYTHON)
    assert run().stdout.strip() == str(installed)
    assert run(RUNNING).stdout.strip() == str(installed)
    # A bare name in PYTHON is looked up the same way.
    assert run(python=f"python{RUNNING}").stdout.strip() == str(installed)


def test_no_python_at_all_says_what_to_install(machine):
    _, _, run = machine
    done = run()
    assert done.returncode == 1
    assert done.stdout == ""
    assert "no Python 3.13 3.12 3.11 found" in done.stderr
    assert "sudo apt-get install python3 python3-venv" in done.stderr
    assert "pyenv install 3.13" in done.stderr
    assert "make run PYTHON=/path/to/python3.12" in done.stderr


def test_a_python_named_in_PYTHON_must_run_and_be_supported(machine, tmp_path):
    _, _, run = machine
    missing = run(python=str(tmp_path / "nowhere" / "python3"))
    assert missing.returncode == 1
    assert "does not run as CPython" in missing.stderr
    assert run(python=str(BASE_PYTHON)).stdout.strip() == str(BASE_PYTHON)
    unsupported = run("3.10")
    assert unsupported.returncode == 2
    assert "Python 3.10 is not supported (supported: 3.13 3.12 3.11)" in unsupported.stderr


def old_python() -> Path | None:
    """A real Python older than 3.11 on this machine, if there is one."""
    roots = [Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"]
    for root in roots:
        for candidate in sorted(root.glob("3.1[0]*/bin/python3.1[0]")) + sorted(
            root.glob("3.[89]*/bin/python3.[89]")
        ):
            return candidate
    for name in ("python3.10", "python3.9", "python3.8"):
        found = shutil.which(name, path="/usr/bin:/usr/local/bin")
        if found:
            return Path(found)
    return None


def test_a_python_too_old_is_refused_by_name(machine):
    _, _, run = machine
    old = old_python()
    if old is None:
        pytest.skip("no Python older than 3.11 on this machine to try")
    done = run(python=str(old))
    assert done.returncode == 1
    assert re.search(
        r"is Python 3\.(8|9|10); this project needs one of 3\.13 3\.12 3\.11", done.stderr
    )


# -- what an existing environment needs ---------------------------------------

HERE = "/work/ic/.venv"
SHA = "a" * 64


def plan(state: VenvState, chosen=(3, 13, 0), explicit=False) -> Plan:
    return decide(state, location=HERE, chosen=chosen, explicit=explicit, requirements_sha256=SHA)


def ready(**changes) -> VenvState:
    fields = {
        "exists": True,
        "is_venv": True,
        "python": (3, 11, 7),
        "stamp": {"requirements_sha256": SHA, "venv": HERE},
        "made_in": HERE,
        **changes,
    }
    return VenvState(**fields)


def test_an_environment_in_order_is_kept_with_its_python():
    # Python 3.13 is the newest here, but switching is asked for, not imposed.
    assert plan(ready()) == Plan("keep")
    assert plan(ready(), chosen=(3, 11, 9), explicit=True) == Plan("keep")


def test_what_makes_an_environment_rebuilt_or_reinstalled():
    assert plan(VenvState(exists=False)).action == "create"
    assert plan(ready(python=None)) == Plan(
        "rebuild", "its Python no longer runs (removed or replaced?)"
    )
    assert plan(ready(python=(3, 10, 4))).reason == "it has Python 3.10.4, which is not supported"
    assert plan(ready(made_in="/old/place/.venv")) == Plan(
        "rebuild", "it was made in /old/place/.venv; its scripts still point there"
    )
    assert plan(ready(), explicit=True) == Plan(
        "rebuild", "PYTHON names Python 3.13, it has 3.11.7"
    )
    assert plan(ready(stamp=None)) == Plan("install", "the last install did not finish")
    assert plan(ready(stamp={})) == Plan("install", "it was made by an earlier Makefile")
    assert plan(ready(stamp={"requirements_sha256": "b" * 64})) == Plan(
        "install", "the requirements changed"
    )


def test_a_directory_that_is_not_an_environment_is_left_alone():
    with pytest.raises(VenvError, match="exists but is not a virtual environment"):
        plan(VenvState(exists=True, is_venv=False))


# -- a copied or moved checkout ----------------------------------------------


def checkout(where: Path) -> Path:
    """The parts of this checkout that the imports need, as a fresh tree."""
    ignore = shutil.ignore_patterns("__pycache__", "build", "*.so", "*.o")
    for part in ("common", "services", "proto", "tools"):
        shutil.copytree(REPO / part, where / part, ignore=ignore)
    (where / "requirements.txt").write_text("")  # nothing to install: the test's own
    return where


def make_venv_in(tree: Path) -> subprocess.CompletedProcess:
    """The checkout's own tools/make_venv.py, as `make venv` runs it."""
    command = [
        sys.executable, str(tree / "tools" / "make_venv.py"),
        "--venv", str(tree / ".venv"),
        "--repo", str(tree),
        "--requirements", str(tree / "requirements.txt"),
    ]  # fmt: skip
    return subprocess.run(
        command,
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def lend_dependencies(tree: Path) -> None:
    """Let the new environment import this one's packages (protobuf for the
    stubs), so nothing is downloaded; the project's own .pth stays as written."""
    site = make_venv.site_packages(tree / ".venv")
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")


def imported_from(tree: Path, elsewhere: Path) -> list[str]:
    """Where the environment in `tree` imports the project's code from, run
    from a directory outside every checkout."""
    done = subprocess.run(
        [
            str(tree / ".venv" / "bin" / "python"),
            "-c",
            "import common.config as c, ic.v1.inpainter_pb2 as p, tools.make_venv as t; "
            "print(c.__file__); print(p.__file__); print(t.__file__)",
        ],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


MODULES = ["common/config.py", "proto/ic/v1/inpainter_pb2.py", "tools/make_venv.py"]


@pytest.fixture(scope="module")
def made_checkout(tmp_path_factory) -> Path:
    """A checkout with an environment made by `make venv` in its place. Tests
    copy it (as `cp -a` would) before changing anything."""
    original = checkout(tmp_path_factory.mktemp("made") / "original")
    made = make_venv_in(original)
    assert made.returncode == 0, made.stdout + made.stderr
    assert f"venv: creating {original / '.venv'} with Python {RUNNING}." in made.stdout
    lend_dependencies(original)
    return original


@pytest.fixture
def outside(tmp_path) -> Path:
    """A working directory outside every checkout."""
    path = tmp_path / "elsewhere"
    path.mkdir()
    return path


@pytest.mark.slow
def test_a_copied_or_moved_checkout_imports_its_own_code(made_checkout, tmp_path, outside):
    original = tmp_path / "original"
    shutil.copytree(made_checkout, original, symlinks=True)
    assert imported_from(original, outside) == [str(original / m) for m in MODULES]

    # `cp -a`: the environment comes along, and imports the copy's code.
    copy = tmp_path / "copy"
    shutil.copytree(original, copy, symlinks=True)
    assert imported_from(copy, outside) == [str(copy / m) for m in MODULES]

    # Moved: the original place is gone.
    moved = tmp_path / "moved"
    original.rename(moved)
    assert imported_from(moved, outside) == [str(moved / m) for m in MODULES]

    # `make venv` in the copy notices that pip's scripts still name the
    # environment it was copied from, and rebuilds it in place.
    pip = copy / ".venv" / "bin" / "pip"
    assert pip.read_text().startswith(f"#!{made_checkout / '.venv' / 'bin' / 'python'}")
    rebuilt = make_venv_in(copy)
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert f"venv: rebuilding {copy / '.venv'} with Python {RUNNING}." in rebuilt.stdout
    assert (
        f"it was made in {made_checkout / '.venv'}; its scripts still point there" in rebuilt.stdout
    )
    assert pip.read_text().startswith(f"#!{copy / '.venv' / 'bin' / 'python'}")
    again = make_venv_in(copy)
    assert again.stdout.startswith(f"venv: {copy / '.venv'} has Python {RUNNING}.")

    # A changed requirements file is installed again, without a rebuild.
    (copy / "requirements.txt").write_text("# nothing yet\n")
    changed = make_venv_in(copy)
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert "installing" in changed.stdout and "the requirements changed" in changed.stdout


@pytest.mark.slow
def test_an_environment_of_the_earlier_makefile_is_rebuilt_when_copied(
    made_checkout, tmp_path, outside
):
    """The earlier Makefile wrote absolute paths into the .pth file and an
    empty stamp: a copy of such a checkout imported the original's code."""
    original = tmp_path / "original"
    shutil.copytree(made_checkout, original, symlinks=True)
    site = make_venv.site_packages(original / ".venv")
    venv = original / ".venv"

    def as_the_earlier_makefile_left_it() -> None:
        (site / make_venv.PTH_NAME).write_text(f"{original}\n{original / 'proto'}\n")
        (venv / make_venv.STAMP_NAME).write_text("")

    as_the_earlier_makefile_left_it()
    copy = tmp_path / "copy"
    shutil.copytree(original, copy, symlinks=True)
    assert imported_from(copy, outside)[0] == str(original / MODULES[0])  # the bug
    state = make_venv.inspect(copy / ".venv", copy)
    assert state.made_in == str(venv)
    assert decide(
        state,
        location=str(copy / ".venv"),
        chosen=sys.version_info[:3],
        explicit=False,
        requirements_sha256=make_venv.sha256_of(copy / "requirements.txt"),
    ) == Plan("rebuild", f"it was made in {venv}; its scripts still point there")

    # In its own place it only gets the new .pth file and stamp.
    in_place = make_venv_in(original)
    assert in_place.returncode == 0, in_place.stdout + in_place.stderr
    assert "installing" in in_place.stdout
    assert "it was made by an earlier Makefile" in in_place.stdout
    assert imported_from(original, outside) == [str(original / m) for m in MODULES]
