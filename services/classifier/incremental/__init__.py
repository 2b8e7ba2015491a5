"""Exact incremental inference for many edits of one image (after Krypton,
Nakandala, Kumar & Papakonstantinou, SIGMOD 2019).

Filled in below once the interface settles.
"""

from services.classifier.incremental.engine import IncrementalEngine

__all__ = ["IncrementalEngine"]
