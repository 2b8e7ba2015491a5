"""Find the SqueezeNet 1.1 ONNX model, or download it and verify its checksum.

Order of precedence:
1. `$IC_MODEL_PATH`, a file (it must exist; no download is attempted).
2. A models directory: `$IC_MODELS_DIR`, else `models/` in the repository,
   then `../shared/models/` beside it, holding one of the known file names.
3. The ONNX Model Zoo file `squeezenet1.1-7.onnx` (or a mirror given as
   `$IC_MODEL_URL` with `$IC_MODEL_SHA256`), downloaded into `models/` (or
   `$IC_MODELS_DIR`) through a temporary file that only replaces the target
   once its SHA-256 matches; a corrupted download is refused.

`python -m services.classifier.fetch_model` prints the path it settled on.
Both the Zoo file and the project's rebuilt file are accepted; `model_graph`
turns either into the form the service runs. When the download fails, the
message says how to do without the host; `--docker-build` (the classifier
image's build step) turns it into advice for the Docker build context.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

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


def model_dirs() -> list[Path]:
    explicit = os.environ.get("IC_MODELS_DIR")
    if explicit:
        return [Path(explicit)]
    return [REPO / "models", REPO.parent / "shared" / "models"]


def find_local_model(dirs: list[Path] | None = None) -> Path | None:
    for directory in dirs if dirs is not None else model_dirs():
        for name in KNOWN_FILE_NAMES:
            candidate = directory / name
            if candidate.is_file():
                return candidate
    return None


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
        tmp.replace(target)
        return target
    except OSError as exc:
        raise ModelDownloadError(source, str(exc)) from exc
    finally:
        tmp.unlink(missing_ok=True)


def configured_source() -> ModelSource:
    """The Model Zoo file, or a mirror: IC_MODEL_URL with its IC_MODEL_SHA256."""
    url = os.environ.get("IC_MODEL_URL", "").strip()
    if not url:
        return MODEL_ZOO
    sha256 = os.environ.get("IC_MODEL_SHA256", "").strip().lower()
    if len(sha256) != 64 or any(ch not in "0123456789abcdef" for ch in sha256):
        raise ModelFetchError("IC_MODEL_URL needs IC_MODEL_SHA256, the file's 64-hex-digit SHA-256")
    return ModelSource(file_name=MODEL_ZOO.file_name, url=url, sha256=sha256)


def ensure_model(source: ModelSource | None = None) -> Path:
    """The model file to run: local if present, otherwise downloaded and verified."""
    explicit = os.environ.get("IC_MODEL_PATH")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ModelFetchError(f"IC_MODEL_PATH={explicit} does not exist")
        return path
    local = find_local_model()
    if local:
        return local
    return download(source or configured_source(), model_dirs()[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--docker-build",
        action="store_true",
        help="running in an image build: advise on the build context when the download fails",
    )
    args = parser.parse_args(argv)
    try:
        path = ensure_model()
    except ModelDownloadError as exc:
        advice = DOCKER_BUILD_ADVICE if args.docker_build else without_the_host(model_dirs())
        print(f"fetch_model: {exc}\n{advice}", file=sys.stderr)
        return 1
    except ModelFetchError as exc:
        print(f"fetch_model: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
