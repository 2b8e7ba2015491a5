"""tools/fetch_gallery: local copy, verified download from a real (loopback)
HTTP server, corrupted downloads refused, and an empty gallery without sources."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gateway.gallery import list_gallery
from tests.support.http_files import serve_directory
from tools import fetch_gallery
from tools.fetch_gallery import PHOTOS
from tools.fetch_gallery import fetch_gallery as fetch


@pytest.fixture
def http_root(tmp_path):
    """A directory served over HTTP on a free loopback port -> (dir, base URL)."""
    root = tmp_path / "served"
    root.mkdir()
    with serve_directory(root) as base:
        yield root, f"{base}/public/"


def serve_photos(images_dir: Path, root: Path) -> Path:
    public = root / "public"
    public.mkdir()
    for photo in PHOTOS:
        shutil.copyfile(images_dir / photo.file, public / photo.file)
    return public


def test_copies_the_photos_from_a_local_directory(tmp_path, images_dir):
    dest = tmp_path / "gallery"
    problems = fetch(dest, images_dir, base_url=None, log=lambda _: None)
    assert problems == []
    for photo in PHOTOS:
        assert fetch_gallery.sha256_of(dest / photo.file) == photo.sha256
    index = json.loads((dest / "index.json").read_text())
    assert [image["id"] for image in index["images"]] == [p.id for p in PHOTOS]
    assert "MIT" in index["credit"] and "Fred Hohman" in index["credit"]
    listed = list_gallery(dest)
    assert [(p.id, p.title) for p in listed][:2] == [
        ("baseball", "Baseball"),
        ("sailboat", "Sailboat"),
    ]
    assert len(listed) == 9
    # A second run has nothing to do.
    messages = []
    assert fetch(dest, images_dir, base_url=None, log=messages.append) == []
    assert messages == []


def test_downloads_and_verifies_when_there_is_no_local_copy(tmp_path, images_dir, http_root):
    root, base_url = http_root
    serve_photos(images_dir, root)
    dest = tmp_path / "gallery"
    assert fetch(dest, None, base_url, log=lambda _: None) == []
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        [p.file for p in PHOTOS] + ["index.json"]
    )


def test_a_corrupted_download_is_refused(tmp_path, images_dir, http_root):
    root, base_url = http_root
    public = serve_photos(images_dir, root)
    data = bytearray((public / "soccer.jpg").read_bytes())
    data[500] ^= 0xFF  # one flipped byte
    (public / "soccer.jpg").write_bytes(bytes(data))
    dest = tmp_path / "gallery"
    problems = fetch(dest, None, base_url, log=lambda _: None)
    assert len(problems) == 1 and "soccer.jpg" in problems[0] and "refused" in problems[0]
    assert not (dest / "soccer.jpg").exists()
    assert (dest / "beach.jpg").is_file()
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]  # no temporary left
    assert "soccer" not in {p.id for p in list_gallery(dest)}


def test_a_wrong_local_file_is_not_copied_but_downloaded(tmp_path, images_dir, http_root):
    root, base_url = http_root
    serve_photos(images_dir, root)
    local = tmp_path / "local"
    shutil.copytree(images_dir, local)
    (local / "bank.jpg").write_bytes(b"not the bank photo")
    dest = tmp_path / "gallery"
    messages = []
    assert fetch(dest, local, base_url, log=messages.append) == []
    assert fetch_gallery.sha256_of(dest / "bank.jpg") == PHOTOS[-1].sha256
    assert messages.count("gallery: bank.jpg downloaded and verified") == 1


def test_an_unreachable_server_leaves_an_empty_gallery(tmp_path, http_root):
    _, base_url = http_root
    dest = tmp_path / "gallery"
    problems = fetch(dest, None, base_url.replace("/public/", "/missing/"), log=lambda _: None)
    assert problems  # 404s: each photo says why
    assert list_gallery(dest) == []
    assert json.loads((dest / "index.json").read_text())["images"] == []


def test_the_command_never_fails_the_build(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IC_GALLERY_SOURCE", str(tmp_path / "nowhere"))
    assert fetch_gallery.main(["--dest", str(tmp_path / "g"), "--offline"]) == 0
    assert "0 of 9 photos" in capsys.readouterr().out
