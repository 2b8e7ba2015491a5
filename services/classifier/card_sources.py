"""Which model cards the classifier is given (stdlib only: the image build's fetch
step runs without the service's dependencies).

- the built-in cards: every `*.json` of `$IC_MODELS_DIR`, default `models/` of
  the repository (`/app/models` in the container image), in name order;
- `$IC_EXTRA_MODELS`: comma-separated paths of more cards, served in addition.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def models_dir() -> Path:
    return Path(os.environ.get("IC_MODELS_DIR") or REPO / "models")


def builtin_cards(directory: Path | None = None) -> list[Path]:
    """The cards of a models folder, in name order."""
    directory = directory or models_dir()
    return sorted(p for p in directory.glob("*.json") if p.is_file())


def extra_cards(setting: str | None = None) -> list[Path]:
    """IC_EXTRA_MODELS: comma-separated card paths (blank entries ignored)."""
    if setting is None:
        setting = os.environ.get("IC_EXTRA_MODELS", "")
    return [Path(item.strip()) for item in setting.split(",") if item.strip()]


def configured_card_paths() -> list[Path]:
    """The built-in cards, then IC_EXTRA_MODELS's."""
    return builtin_cards() + extra_cards()
