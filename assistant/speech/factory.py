"""Builds the recognizer the config asks for."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from assistant.config import Config
from assistant.speech.recognizer import Recognizer, RecognizerError
from intents.grammar import Grammar


def create_recognizer(config: Config, grammar: Grammar | Sequence[str] | None = None) -> Recognizer:
    """The configured recognizer, constrained to `grammar` when config allows it."""
    engine = config.recognizer.engine
    recognizer: Recognizer
    if engine == "pocketsphinx":
        from assistant.speech.sphinx import PocketsphinxRecognizer

        recognizer = PocketsphinxRecognizer()
    elif engine == "vosk":
        from assistant.models import ModelError, default_models_dir, resolve_model_path
        from assistant.speech.vosk_recognizer import VoskRecognizer

        models_dir = (
            Path(config.paths.models_dir).expanduser()
            if config.paths.models_dir
            else default_models_dir()
        )
        try:
            path = resolve_model_path(config.recognizer.vosk_model, models_dir)
        except ModelError as exc:
            raise RecognizerError(str(exc)) from None
        recognizer = VoskRecognizer(path)
    else:
        raise RecognizerError(f"unknown recognizer {engine!r}")
    if grammar is not None and config.recognizer.use_grammar:
        recognizer.set_grammar(grammar)
    return recognizer
