"""`make venv`: the virtual environment that `make run` and `make test` use.

Run by the interpreter tools/find_python.sh chose (standard library only):

    python tools/make_venv.py --venv .venv --repo . --requirements requirements/dev.txt [--explicit]

It creates the environment, or decides what an existing one needs:
- its Python no longer runs, is not 3.11-3.13, or the environment was made in
  another directory (a moved or copied checkout: pip's scripts in bin/ name
  the old interpreter by absolute path) -> rebuilt from scratch;
- `--explicit` (PYTHON was given) names another X.Y than it has -> rebuilt;
- otherwise it keeps its Python, even if a newer one is installed now: a
  rebuild takes minutes, so switching is asked for (PYTHON=..., make clean);
- the requirements file changed since the last install (its SHA-256 is kept in
  the stamp file) or the last install did not finish -> pip installs again.

Imports do not depend on where the checkout lives: the .pth file in
site-packages computes the repository (and proto/, the generated ic.v1 stubs)
from the environment's own location when the interpreter starts, so a copied
checkout's environment imports the copy's code, never the original's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SUPPORTED = ((3, 11), (3, 12), (3, 13))
PTH_NAME = "interactive_classification.pth"
STAMP_NAME = ".installed"

Version = tuple[int, int, int]


class VenvError(RuntimeError):
    pass


def say(message: str) -> None:
    print(f"venv: {message}", flush=True)


def dotted(version: Version | tuple[int, ...]) -> str:
    return ".".join(map(str, version))


@dataclass(frozen=True)
class VenvState:
    """What an environment directory holds, as far as the decision goes."""

    exists: bool
    is_venv: bool = False  # has pyvenv.cfg
    python: Version | None = None  # what its interpreter reports; None if it does not run
    stamp: dict | None = None  # the last finished install; None if there was none
    made_in: str | None = None  # the real path it was created at, if known


@dataclass(frozen=True)
class Plan:
    action: str  # "create", "rebuild", "install" or "keep"
    reason: str = ""


def decide(
    state: VenvState,
    *,
    location: str,
    chosen: Version,
    explicit: bool,
    requirements_sha256: str,
) -> Plan:
    """What to do with the environment at `location` (its real path)."""
    if not state.exists:
        return Plan("create")
    if not state.is_venv:
        raise VenvError(f"{location} exists but is not a virtual environment: move it away")
    if state.python is None:
        return Plan("rebuild", "its Python no longer runs (removed or replaced?)")
    if state.python[:2] not in SUPPORTED:
        return Plan("rebuild", f"it has Python {dotted(state.python)}, which is not supported")
    if state.made_in is not None and state.made_in != location:
        return Plan(
            "rebuild",
            f"it was made in {state.made_in}; its scripts still point there",
        )
    if explicit and state.python[:2] != chosen[:2]:
        return Plan(
            "rebuild",
            f"PYTHON names Python {dotted(chosen[:2])}, it has {dotted(state.python)}",
        )
    if state.stamp is None:
        return Plan("install", "the last install did not finish")
    if "requirements_sha256" not in state.stamp:
        return Plan("install", "it was made by an earlier Makefile")
    if state.stamp["requirements_sha256"] != requirements_sha256:
        return Plan("install", "the requirements changed")
    return Plan("keep")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def query(python: Path, code: str) -> str | None:
    """Run `code` in `python`; its stdout, or None if it does not run."""
    try:
        result = subprocess.run(
            [str(python), "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def site_packages(venv: Path) -> Path:
    path = query(venv_python(venv), "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    if not path:
        raise VenvError(f"{venv_python(venv)} does not run")
    return Path(path)


def pth_text(venv: Path, repo: Path) -> str:
    """The .pth line: the repository and proto/, found from sys.prefix (the
    environment) at interpreter start, so nothing absolute is written down."""
    up = os.path.relpath(repo.resolve(), venv.resolve())
    return (
        "import os, sys; sys.path.extend((lambda r: [r, os.path.join(r, 'proto')])"
        f"(os.path.normpath(os.path.join(sys.prefix, {up!r}))))\n"
    )


def inspect(venv: Path, repo: Path) -> VenvState:
    if not venv.exists():
        return VenvState(exists=False)
    if not (venv / "pyvenv.cfg").is_file():
        return VenvState(exists=True)
    reported = query(venv_python(venv), "import platform; print(platform.python_version())")
    python = None
    if reported:
        try:
            major, minor, micro = (int(part) for part in reported.split(".")[:3])
            python = (major, minor, micro)
        except ValueError:
            python = None
    stamp_path = venv / STAMP_NAME
    stamp = None
    made_in = None
    if stamp_path.is_file():
        try:
            stamp = json.loads(stamp_path.read_text() or "{}")
        except (ValueError, OSError):
            stamp = {}
        if not isinstance(stamp, dict):
            stamp = {}
        made_in = stamp.get("venv")
    if made_in is None and python is not None:
        made_in = legacy_location(venv, repo)
    return VenvState(True, True, python, stamp, made_in)


def legacy_location(venv: Path, repo: Path) -> str | None:
    """Where an environment of the earlier Makefile was made: its .pth named
    the repository by absolute path on the first line."""
    try:
        pth = site_packages(venv) / PTH_NAME
        first = pth.read_text().splitlines()[0].strip()
    except (VenvError, OSError, IndexError):
        return None
    if not first.startswith("/"):
        return None
    return str(Path(first) / os.path.relpath(venv.resolve(), repo.resolve()))


def create(venv: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "venv", str(venv)], check=False)
    if result.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        version = f"{sys.version_info[0]}.{sys.version_info[1]}"
        raise VenvError(
            f"`{sys.executable} -m venv` failed. On Debian/Ubuntu: "
            f"sudo apt-get install python{version}-venv"
        )


def install(venv: Path, requirements: Path) -> None:
    command = [str(venv_python(venv)), "-m", "pip", "install", "--quiet", "--require-hashes"]
    result = subprocess.run([*command, "-r", str(requirements)], check=False)
    if result.returncode != 0:
        raise VenvError(f"pip could not install {requirements}; run make again once fixed")


def write_pth(venv: Path, repo: Path) -> None:
    pth = site_packages(venv) / PTH_NAME
    text = pth_text(venv, repo)
    if not pth.is_file() or pth.read_text() != text:
        pth.write_text(text)


def ensure(venv: Path, repo: Path, requirements: Path, explicit: bool) -> Plan:
    chosen = (sys.version_info.major, sys.version_info.minor, sys.version_info.micro)
    location = os.path.realpath(venv)
    requirements_sha256 = sha256_of(requirements)
    state = inspect(venv, repo)
    plan = decide(
        state,
        location=location,
        chosen=chosen,
        explicit=explicit,
        requirements_sha256=requirements_sha256,
    )
    interpreter = f"Python {platform.python_version()} ({sys.executable})"
    if plan.action in ("create", "rebuild"):
        if plan.action == "rebuild":
            say(f"rebuilding {venv} with {interpreter}: {plan.reason}")
            shutil.rmtree(venv)
        else:
            say(f"creating {venv} with {interpreter}")
        create(venv)
    elif plan.action == "install":
        say(f"{venv} has Python {dotted(state.python)}; installing {requirements}: {plan.reason}")
    else:
        note = ""
        if state.python and state.python[:2] != chosen[:2]:
            note = (
                f" (python{dotted(chosen[:2])} is installed too: "
                f"PYTHON=python{dotted(chosen[:2])} or `make clean` to switch)"
            )
        say(f"{venv} has Python {dotted(state.python)}{note}")
    if plan.action != "keep":
        install(venv, requirements)
        stamp = {
            "requirements_sha256": requirements_sha256,
            "python": query(venv_python(venv), "import platform; print(platform.python_version())"),
            "venv": location,
        }
        write_pth(venv, repo)
        (venv / STAMP_NAME).write_text(json.dumps(stamp, indent=1) + "\n")
    else:
        write_pth(venv, repo)
    return plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, default=Path(".venv"))
    parser.add_argument("--repo", type=Path, default=Path("."))
    parser.add_argument("--requirements", type=Path, default=Path("requirements/dev.txt"))
    parser.add_argument(
        "--explicit", action="store_true", help="this interpreter was asked for (PYTHON=...)"
    )
    args = parser.parse_args(argv)
    try:
        ensure(args.venv, args.repo, args.requirements, args.explicit)
    except VenvError as exc:
        say(str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
