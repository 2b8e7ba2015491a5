"""The example photos the page offers: the files of the gallery directory.

`python -m tools.fetch_gallery` fills the directory and writes `index.json`
(ids, titles, source, licence) beside the photos; without it, every image file
of the directory is listed with a title made from its name. No directory, no
photos: the list is empty and everything else still works.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
INDEX_FILE = "index.json"


@dataclass(frozen=True)
class GalleryPhoto:
    id: str
    title: str
    file: str
    credit: str = ""


def title_from_name(stem: str) -> str:
    """'hockey2' -> 'Hockey 2', 'golden_gate' -> 'Golden Gate'."""
    words = re.sub(r"(?<=[A-Za-z])(?=\d)", " ", stem).replace("_", " ").replace("-", " ")
    return " ".join(word.capitalize() for word in words.split())


def list_gallery(directory: Path) -> list[GalleryPhoto]:
    if not directory.is_dir():
        return []
    present = {
        p.name: p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    }
    photos: list[GalleryPhoto] = []
    index_path = directory / INDEX_FILE
    if index_path.is_file():
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
            credit = index.get("credit", "")
            for entry in index.get("images", []):
                if entry.get("file") in present:
                    photos.append(
                        GalleryPhoto(
                            id=str(entry["id"]),
                            title=str(entry.get("title") or title_from_name(entry["id"])),
                            file=entry["file"],
                            credit=credit,
                        )
                    )
        except (ValueError, KeyError, AttributeError, TypeError):
            photos = []  # a damaged index: fall back to the files themselves
    listed = {photo.file for photo in photos}
    for name in sorted(present):
        if name not in listed:
            stem = Path(name).stem
            photos.append(GalleryPhoto(id=stem, title=title_from_name(stem), file=name))
    return photos
