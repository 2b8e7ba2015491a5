"""Every model the classifier was given: the ones it serves and the ones it cannot.

`ModelRegistry.load(card_paths, ...)` reads each card and loads its model, one
at a time; a card or model that fails (bad field, missing or corrupt ONNX file,
a graph that is not an image classifier, labels that do not match, a file over
the size limit, a name already taken) becomes an `UnavailableModel` with the
reason, is logged with its card's path, and never stops the others. The
default model is the configured one if it loaded, else the first that did.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from common.errors import EngineUnavailable, NotFound
from services.classifier.cards import CardError, ModelCard, card_name_hint, read_card
from services.classifier.core import ClassifierModel, ModelSettings
from services.classifier.model_graph import ModelFormatError

log = logging.getLogger("classifier")

# What a bad card or model file raises while loading (fetch errors are RuntimeErrors).
EXPECTED_FAILURES = (ModelFormatError, ValueError, OSError, MemoryError, RuntimeError)

Loader = Callable[[ModelCard, ModelSettings], ClassifierModel]


class ModelUnavailable(EngineUnavailable):
    """A model that is listed but could not be loaded (FAILED_PRECONDITION; the reason says why)."""


@dataclass(frozen=True)
class UnavailableModel:
    name: str
    card_path: Path
    reason: str
    card: ModelCard | None = None


class ModelRegistry:
    def __init__(
        self,
        models: Iterable[ClassifierModel],
        unavailable: Iterable[UnavailableModel] = (),
        default_name: str = "",
    ) -> None:
        self.models = {model.name: model for model in models}
        self.unavailable = {entry.name: entry for entry in unavailable}
        if default_name in self.models:
            self.default_name = default_name
        else:
            self.default_name = next(iter(self.models), "")
        # Listings: the default first, then the others in card order, unavailable last.
        served = [self.default_name] if self.default_name else []
        served += [name for name in self.models if name != self.default_name]
        self.order = served + [n for n in self.unavailable if n not in self.models]

    @classmethod
    def load(
        cls,
        card_paths: Iterable[Path],
        settings: ModelSettings,
        loader: Loader,
        default_name: str = "",
    ) -> ModelRegistry:
        models: list[ClassifierModel] = []
        unavailable: list[UnavailableModel] = []
        taken: dict[str, Path] = {}
        for path in card_paths:
            entry = _load_one(Path(path), settings, loader, taken)
            if isinstance(entry, UnavailableModel):
                unavailable.append(entry)
                log.error(
                    "model unavailable",
                    extra={"card": str(path), "model": entry.name, "reason": entry.reason},
                )
            else:
                models.append(entry)
                head = entry.cam_head.structure if entry.cam_head else f"none: {entry.cam_reason}"
                log.info(
                    "model loaded",
                    extra={
                        "card": str(path),
                        "model": entry.name,
                        "onnx": str(entry.card.onnx),
                        "classes": entry.num_classes,
                        "cam": head,
                    },
                )
        registry = cls(models, unavailable, default_name)
        if default_name and registry.default_name != default_name:
            log.warning(
                "default model not available",
                extra={"wanted": default_name, "default": registry.default_name or None},
            )
        return registry

    def get(self, name: str) -> ClassifierModel:
        """The model called `name` ("" = the default); NotFound or ModelUnavailable otherwise."""
        name = name or self.default_name
        model = self.models.get(name)
        if model is not None:
            return model
        entry = self.unavailable.get(name)
        if entry is not None:
            raise ModelUnavailable(f"model {name!r} is unavailable: {entry.reason}")
        raise NotFound(f"unknown model {name[:64]!r}; {self.describe_names()}")

    def describe_names(self) -> str:
        served = ", ".join(n for n in self.order if n in self.models) or "none"
        text = f"the models are: {served}"
        if self.unavailable:
            text += f" (unavailable: {', '.join(self.unavailable)})"
        return text


def _load_one(
    path: Path, settings: ModelSettings, loader: Loader, taken: dict[str, Path]
) -> ClassifierModel | UnavailableModel:
    try:
        card = read_card(path)
    except CardError as exc:
        name = exc.name or card_name_hint(path)
        return UnavailableModel(_unique(name, taken, path), path, "; ".join(exc.problems))
    if card.name in taken:
        other = taken[card.name]
        return UnavailableModel(
            _unique(card.name, taken, path),
            path,
            f"the name {card.name!r} is already taken by {other}",
            card,
        )
    taken[card.name] = path
    try:
        return loader(card, settings)
    except EXPECTED_FAILURES as exc:
        return UnavailableModel(card.name, path, str(exc), card)
    except Exception as exc:
        # Not a failure we know of, but still this one model's: log it whole
        # and serve the others.
        log.exception("model failed to load", extra={"card": str(path)})
        return UnavailableModel(card.name, path, f"{type(exc).__name__}: {exc}", card)


def _unique(name: str, taken: dict[str, Path], path: Path) -> str:
    """A listing name for an unavailable card that clashes with no other."""
    candidate, number = name, 2
    while candidate in taken:
        candidate = f"{name}~{number}"
        number += 1
    taken[candidate] = path
    return candidate
