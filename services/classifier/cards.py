"""Model cards: the JSON file that makes an ONNX file a served model.

`read_card(path)` parses and checks a card and returns a `ModelCard`, or raises
`CardError` naming every problem it found at once (an operator fixing a card
should not have to restart the service once per mistake). The format is the
one every part of the project agrees on (README, "Model cards"):

    {"name": "my-model", "title": "...", "onnx": "my-model.onnx",
     "labels": "labels.txt" | ["cat", "dog", ...],
     "input": {"size": [h, w] | "short_side": n, "crop": [h, w] | null,
               "layout": "NCHW" | "NHWC", "color": "RGB" | "BGR",
               "scale": 0.0039, "mean": [m, m, m], "std": [s, s, s],
               "train_size": [h, w]},
     "outputs": "logits" | "probabilities", "licence": "...",
     "url": "https://..." | null, "sha256": "64 hex digits" | null,
     "source": "free text", "max_pool_ceil": false}

Paths (`onnx`, `labels` when a string) are relative to the card's folder.
Nothing here opens the ONNX file: that is model_graph's work.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]*\Z")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}\Z")
LAYOUTS = ("NCHW", "NHWC")
COLORS = ("RGB", "BGR")
OUTPUTS = ("logits", "probabilities")
MAX_CARD_BYTES = 1 << 20
MAX_LABELS_BYTES = 16 << 20
# Larger input sides are a mistake, not a model (the image limits are 4096).
MAX_INPUT_SIDE = 4096

CARD_FIELDS = (
    "name",
    "title",
    "onnx",
    "labels",
    "input",
    "outputs",
    "licence",
    "url",
    "sha256",
    "source",
    "max_pool_ceil",
)
REQUIRED_FIELDS = ("name", "title", "onnx", "labels", "input", "outputs", "licence")
INPUT_FIELDS = (
    "size",
    "short_side",
    "crop",
    "layout",
    "color",
    "scale",
    "mean",
    "std",
    "train_size",
)
REQUIRED_INPUT_FIELDS = ("layout", "color", "scale", "mean", "std")


class CardError(ValueError):
    """A card that cannot be served; `problems` lists every reason."""

    def __init__(self, path: Path, problems: list[str], name: str | None = None) -> None:
        self.path = path
        self.problems = problems
        self.name = name
        super().__init__(f"{path}: " + "; ".join(problems))


@dataclass(frozen=True)
class InputSpec:
    """How an RGB image becomes the network's input tensor."""

    layout: str
    color: str
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    # Exactly one of size (h, w: resized to exactly this) and short_side
    # (resized so the shorter side is this, aspect kept).
    size: tuple[int, int] | None = None
    short_side: int | None = None
    # (h, w) centre crop after resizing.
    crop: tuple[int, int] | None = None
    # (h, w) the weights were trained at (informational).
    train_size: tuple[int, int] | None = None

    @property
    def fixed_size(self) -> tuple[int, int] | None:
        """(h, w) of the network input when it does not depend on the image."""
        return self.crop or self.size

    @property
    def trained_at(self) -> tuple[int, int]:
        if self.train_size:
            return self.train_size
        fixed = self.fixed_size
        if fixed:
            return fixed
        assert self.short_side is not None
        return (self.short_side, self.short_side)

    def describe(self) -> str:
        if self.size:
            resize = f"resized to {self.size[1]}x{self.size[0]}"
        else:
            resize = f"shorter side resized to {self.short_side}"
        crop = f", centre crop {self.crop[1]}x{self.crop[0]}" if self.crop else ""
        return f"{resize}{crop}, {self.layout} {self.color}"


@dataclass(frozen=True)
class ModelCard:
    path: Path  # the card file itself
    name: str
    title: str
    onnx: Path  # resolved against the card's folder
    labels: tuple[str, ...]
    input: InputSpec
    outputs: str
    licence: str
    url: str | None = None
    sha256: str | None = None
    source: str = ""
    # Every MaxPool rounds its output size up (Caffe's and Gluon's rule), for
    # graphs whose opset (< 10) could not say so; matters when H, W are dynamic.
    max_pool_ceil: bool = False


def card_name_hint(path: Path) -> str:
    """The name a card goes by in listings even when it cannot be parsed."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("name"), str) and data["name"]:
            return data["name"][:64]
    except (OSError, ValueError):
        pass
    return path.stem[:64] or "card"


def read_card(path: Path) -> ModelCard:
    """The checked card at `path`; CardError naming every problem otherwise."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CardError(path, [f"cannot read the card: {exc.strerror or exc}"]) from None
    if size > MAX_CARD_BYTES:
        raise CardError(path, [f"the card is {size} bytes; at most {MAX_CARD_BYTES}"])
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise CardError(path, ["the card is not UTF-8 text"]) from None
    except json.JSONDecodeError as exc:
        raise CardError(
            path, [f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"]
        ) from None
    except OSError as exc:
        raise CardError(path, [f"cannot read the card: {exc.strerror or exc}"]) from None
    if not isinstance(data, dict):
        raise CardError(path, ["a card is a JSON object ({...})"])
    return _CardReader(path, data).card()


class _CardReader:
    """One pass over a card's JSON, collecting every problem."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data
        self.problems: list[str] = []

    def problem(self, message: str) -> None:
        self.problems.append(message)

    def card(self) -> ModelCard:
        data = self.data
        self.unknown_fields(data, CARD_FIELDS, "")
        for key in REQUIRED_FIELDS:
            if key not in data:
                self.problem(f"missing field {key!r}")
        name = self.name(data.get("name"))
        title = self.text("title", data.get("title"))
        onnx = self.relative_path("onnx", data.get("onnx"))
        labels = self.labels(data.get("labels"))
        spec = self.input(data.get("input"))
        outputs = self.choice("outputs", data.get("outputs"), OUTPUTS)
        licence = self.text("licence", data.get("licence"))
        url = self.url(data.get("url"))
        sha256 = self.sha256(data.get("sha256"))
        source = data.get("source", "")
        if not isinstance(source, str):
            self.problem("source must be text")
        max_pool_ceil = data.get("max_pool_ceil", False)
        if not isinstance(max_pool_ceil, bool):
            self.problem(f"max_pool_ceil must be true or false (got {max_pool_ceil!r})")
        if self.problems:
            raise CardError(self.path, self.problems, name)
        return ModelCard(
            path=self.path,
            name=name,
            title=title,
            onnx=onnx,
            labels=labels,
            input=spec,
            outputs=outputs,
            licence=licence,
            url=url,
            sha256=sha256,
            source=source,
            max_pool_ceil=max_pool_ceil,
        )

    # -- fields ----------------------------------------------------------------

    def unknown_fields(self, data: dict, known: tuple[str, ...], prefix: str) -> None:
        for key in data:
            if key in known:
                continue
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {prefix}{close[0]!r}?)" if close else ""
            self.problem(f"unknown field {prefix}{key!r}{hint}")

    def name(self, value: Any) -> str:
        if value is None:
            return ""
        if not isinstance(value, str) or not NAME_PATTERN.match(value) or len(value) > 64:
            self.problem(
                f"name {value!r} must be 1-64 characters of a-z, 0-9, '.', '_', '-', "
                "starting with a letter or digit"
            )
            return ""
        return value

    def text(self, key: str, value: Any) -> str:
        if value is None:
            return ""
        if not isinstance(value, str) or not value.strip():
            self.problem(f"{key} must be non-empty text")
            return ""
        return value.strip()

    def relative_path(self, key: str, value: Any) -> Path:
        if value is None:
            return Path()
        if not isinstance(value, str) or not value.strip():
            self.problem(f"{key} must be a file path (relative to the card's folder)")
            return Path()
        return (self.path.parent / value).resolve()

    def choice(self, key: str, value: Any, allowed: tuple[str, ...]) -> str:
        if value is None:
            return ""
        if value not in allowed:
            self.problem(f"{key} must be {' or '.join(allowed)} (got {value!r})")
            return ""
        return value

    def url(self, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value.startswith(("https://", "http://")):
            self.problem(f"url must be an http(s) URL or null (got {value!r})")
            return None
        return value

    def sha256(self, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not SHA256_PATTERN.match(value.lower()):
            self.problem("sha256 must be the file's SHA-256 as 64 hex digits, or null")
            return None
        return value.lower()

    def labels(self, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, list):
            if not value or not all(isinstance(item, str) for item in value):
                self.problem("labels must be a non-empty list of strings, or a file path")
                return ()
            return tuple(value)
        if not isinstance(value, str) or not value.strip():
            self.problem("labels must be a file path (one label per line) or a list of strings")
            return ()
        path = (self.path.parent / value).resolve()
        try:
            size = path.stat().st_size
            if size > MAX_LABELS_BYTES:
                self.problem(f"labels file {path} is {size} bytes; at most {MAX_LABELS_BYTES}")
                return ()
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            self.problem(f"labels file {path} is not UTF-8 text")
            return ()
        except OSError as exc:
            self.problem(f"labels file {path}: {exc.strerror or exc}")
            return ()
        # A trailing blank line is an editor's habit, not a class.
        while lines and not lines[-1].strip():
            lines.pop()
        if not lines:
            self.problem(f"labels file {path} is empty")
        return tuple(lines)

    def input(self, value: Any) -> InputSpec:
        fallback = InputSpec("NCHW", "RGB", 1.0, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), size=(1, 1))
        if value is None:
            return fallback
        if not isinstance(value, dict):
            self.problem("input must be an object ({...})")
            return fallback
        before = len(self.problems)
        self.unknown_fields(value, INPUT_FIELDS, "input.")
        for key in REQUIRED_INPUT_FIELDS:
            if key not in value:
                self.problem(f"missing field input.{key!r}")
        size = self.pair("input.size", value.get("size"))
        short_side = self.side("input.short_side", value.get("short_side"))
        has_size, has_short_side = (value.get(k) is not None for k in ("size", "short_side"))
        if has_size and has_short_side:
            self.problem("input has both size and short_side: give exactly one")
        elif not has_size and not has_short_side:
            self.problem("input needs one of size [h, w] or short_side n")
        crop = self.pair("input.crop", value.get("crop"))
        if crop and size and (crop[0] > size[0] or crop[1] > size[1]):
            self.problem(f"input.crop {list(crop)} is larger than input.size {list(size)}")
        if crop and short_side and max(crop) > short_side:
            self.problem(f"input.crop {list(crop)} does not fit in the shorter side {short_side}")
        layout = self.choice("input.layout", value.get("layout"), LAYOUTS)
        color = self.choice("input.color", value.get("color"), COLORS)
        scale = self.number("input.scale", value.get("scale"), positive=True)
        mean = self.triple("input.mean", value.get("mean"), positive=False)
        std = self.triple("input.std", value.get("std"), positive=True)
        train_size = self.pair("input.train_size", value.get("train_size"))
        if len(self.problems) > before:
            return fallback
        return InputSpec(
            layout=layout,
            color=color,
            scale=scale,
            mean=mean,
            std=std,
            size=size,
            short_side=short_side,
            crop=crop,
            train_size=train_size,
        )

    def side(self, key: str, value: Any) -> int | None:
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not 1 <= value <= MAX_INPUT_SIDE
        ):
            self.problem(
                f"{key} must be a whole number of pixels, 1..{MAX_INPUT_SIDE} (got {value!r})"
            )
            return None
        return value

    def pair(self, key: str, value: Any) -> tuple[int, int] | None:
        if value is None:
            return None
        if not isinstance(value, list) or len(value) != 2:
            self.problem(f"{key} must be [height, width] (got {value!r})")
            return None
        sides = [self.side(f"{key}[{i}]", item) for i, item in enumerate(value)]
        if None in sides:
            return None
        return (sides[0], sides[1])

    def number(self, key: str, value: Any, positive: bool) -> float:
        if value is None:
            return 1.0
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.problem(f"{key} must be a number (got {value!r})")
            return 1.0
        if not math.isfinite(value) or (positive and value <= 0):
            self.problem(f"{key} must be a finite{' positive' if positive else ''} number")
            return 1.0
        return float(value)

    def triple(self, key: str, value: Any, positive: bool) -> tuple[float, float, float]:
        if value is None:
            return (1.0, 1.0, 1.0)
        if not isinstance(value, list) or len(value) != 3:
            count = f"{len(value)} numbers" if isinstance(value, list) else repr(value)
            self.problem(f"{key} must be 3 numbers, one per channel (got {count})")
            return (1.0, 1.0, 1.0)
        numbers = [self.number(f"{key}[{i}]", item, positive) for i, item in enumerate(value)]
        return (numbers[0], numbers[1], numbers[2])
