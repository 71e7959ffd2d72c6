"""Torch's own objects by dotted name (`torch.cuda.Event.record`): the tables the patches
and the judges are built from name what they wrap as text, so the catalog stays data."""

from __future__ import annotations

import importlib


def resolve(dotted: str):
    """(owner, attribute, value) for a dotted name such as `torch.cuda.Event.record`,
    importing the longest module prefix; None when it does not exist in this torch."""
    parts = dotted.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for part in parts[split:-1]:
                owner = getattr(owner, part)
            return owner, parts[-1], getattr(owner, parts[-1])
        except AttributeError:
            return None
    return None
