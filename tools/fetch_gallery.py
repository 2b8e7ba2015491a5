"""Fill `gallery/` with the nine photos of the original demo, checksum-verified.

Where the photos come from, first match wins:
1. A local directory: `$IC_GALLERY_SOURCE`, default `../shared/images` beside
   the repository. Files are copied only if their SHA-256 is the pinned one.
2. The public repository poloclub/interactive-classification at a pinned
   commit (raw GitHub URLs, `$IC_GALLERY_BASE_URL` to use a mirror), through a
   temporary file that replaces the target only once its SHA-256 matches: a
   corrupted or tampered download is refused.

Photos already present with the right checksum are kept. `index.json` beside
them gives the gateway ids, titles and the credit line. Without any source
the gallery stays empty and the rest of the system works as before.

The photos: MIT licence, Copyright (c) 2018 Fred Hohman, Angel Cabrera,
Jason Lin (poloclub/interactive-classification).

`python -m tools.fetch_gallery [--dest DIR] [--offline]`. Standard library
only: the gateway's image build runs this file as a plain script.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMIT = "a6ca297a1be873c0a3aecba8edf2b6e5109bf534"
BASE_URL = f"https://raw.githubusercontent.com/poloclub/interactive-classification/{COMMIT}/public/"
CREDIT = (
    "Photos from poloclub/interactive-classification, MIT licence, "
    "Copyright (c) 2018 Fred Hohman, Angel Cabrera, Jason Lin"
)


@dataclass(frozen=True)
class Photo:
    id: str
    title: str
    sha256: str

    @property
    def file(self) -> str:
        return f"{self.id}.jpg"


# In the order the original demo shows them; checksums from shared/images/PROVENANCE.md.
PHOTOS = (
    Photo(
        "baseball", "Baseball", "5db67646cc3810113c0cf8d2d3265498c8383c136c99ed917d70e383171b3097"
    ),
    Photo(
        "sailboat", "Sailboat", "59b864e76e9b6d7d8a14bcf7357dad307f7c65df09951da53c852fe3c53ff2a8"
    ),
    Photo(
        "lighthouse",
        "Lighthouse",
        "ca9087df8eb968a1e4fc214d8dc6b178c451b0b9a61b97db612dca463527b1f1",
    ),
    Photo("beach", "Beach", "e09c5284f01e25aace693d825a700cfabe9257dd536f1488acd90249eb1640ca"),
    Photo("soccer", "Soccer", "d060c46d531d18397bc7c82272a795c72ca3c8f972a5b9c59b2d1ceb033a7a99"),
    Photo("hockey", "Hockey", "a8b6cfd0c2fb305b596a13096356e557873cdea3df7a9e855b77450337d7c54d"),
    Photo(
        "hockey2", "Hockey 2", "33232f9d4383997555da121ef5e18209a2d32a6c04011ab75e2659c7812a1936"
    ),
    Photo("skiing", "Skiing", "e1067bc37a3524c253ab8eadaae6be55a6ca77f65112ea0b3375dcd2954f62e4"),
    Photo("bank", "Bank", "a6cca6ba675eabb600911a50d9275b233253f826a9f8351ba9d390af61edc95d"),
)
MAX_PHOTO_BYTES = 5 * 1024 * 1024


class GalleryFetchError(RuntimeError):
    pass


class DownloadUnreachable(GalleryFetchError):
    """The server could not be reached: no point trying the other photos."""


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def has_photo(path: Path, photo: Photo) -> bool:
    return path.is_file() and sha256_of(path) == photo.sha256


def copy_local(source: Path, dest: Path, photo: Photo) -> bool:
    """Copy from a local directory; False if it lacks the photo or holds another file."""
    candidate = source / photo.file
    if not has_photo(candidate, photo):
        return False
    shutil.copyfile(candidate, dest / photo.file)
    return True


def download(base_url: str, dest: Path, photo: Photo, timeout: float = 15.0) -> None:
    """Download through a temporary file; only a file with the pinned checksum lands."""
    url = base_url.rstrip("/") + "/" + photo.file
    with tempfile.NamedTemporaryFile(dir=dest, prefix=f".{photo.id}-", delete=False) as tmp:
        tmp_path = Path(tmp.name)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                data = response.read(MAX_PHOTO_BYTES + 1)
            if len(data) > MAX_PHOTO_BYTES:
                raise GalleryFetchError(f"{url}: larger than {MAX_PHOTO_BYTES} bytes, refused")
            digest = hashlib.sha256(data).hexdigest()
            if digest != photo.sha256:
                raise GalleryFetchError(
                    f"{url}: SHA-256 {digest} is not the pinned {photo.sha256}; "
                    "the download is corrupted or not the original photo, refused"
                )
            tmp.write(data)
            tmp.close()
            os.replace(tmp_path, dest / photo.file)
        except OSError as exc:
            raise DownloadUnreachable(f"{url}: {exc}") from exc
        finally:
            tmp_path.unlink(missing_ok=True)


def write_index(dest: Path) -> None:
    images = [
        {"id": p.id, "title": p.title, "file": p.file} for p in PHOTOS if (dest / p.file).is_file()
    ]
    index = {"credit": CREDIT, "source": BASE_URL, "images": images}
    (dest / "index.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")


def fetch_gallery(dest: Path, source: Path | None, base_url: str | None, log=print) -> list[str]:
    """Make `dest` hold every photo it can; returns the problems (empty = all nine)."""
    dest.mkdir(parents=True, exist_ok=True)
    problems = []
    for photo in PHOTOS:
        if has_photo(dest / photo.file, photo):
            continue
        if source is not None and copy_local(source, dest, photo):
            log(f"gallery: {photo.file} copied from {source}")
            continue
        if base_url is None:
            problems.append(f"{photo.file}: not in {source} and downloads are off")
            continue
        try:
            download(base_url, dest, photo)
            log(f"gallery: {photo.file} downloaded and verified")
        except DownloadUnreachable as exc:
            problems.append(f"{exc} (no further downloads tried)")
            base_url = None
        except GalleryFetchError as exc:
            problems.append(str(exc))
    write_index(dest)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dest", type=Path, default=Path(os.environ.get("IC_GALLERY_DIR", REPO / "gallery"))
    )
    parser.add_argument("--offline", action="store_true", help="copy only, never download")
    args = parser.parse_args(argv)
    source = Path(os.environ.get("IC_GALLERY_SOURCE", REPO.parent / "shared" / "images"))
    base_url = None if args.offline else os.environ.get("IC_GALLERY_BASE_URL", BASE_URL)
    problems = fetch_gallery(args.dest, source if source.is_dir() else None, base_url)
    present = sum((args.dest / p.file).is_file() for p in PHOTOS)
    print(f"gallery: {present} of {len(PHOTOS)} photos in {args.dest}")
    for problem in problems:
        print(f"gallery: {problem}", file=sys.stderr)
    # A missing gallery is not fatal: the page works with uploads alone.
    return 0


if __name__ == "__main__":
    sys.exit(main())
