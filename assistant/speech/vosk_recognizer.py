"""vosk (Kaldi): used when a vosk model is installed under models/ and selected in config."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from assistant.speech.recognizer import Recognizer, RecognizerError, Transcript, sayable_phrases
from intents.grammar import Grammar

log = logging.getLogger(__name__)

UNKNOWN = "[unk]"  # vosk's garbage word: lets out-of-grammar speech go somewhere


def load_vosk_model(path: Path):
    """Load a checked model folder; vosk's own failure becomes a RecognizerError."""
    import vosk

    vosk.SetLogLevel(-1)
    try:
        return vosk.Model(str(path))
    except Exception as exc:  # vosk raises a bare Exception
        raise RecognizerError(f"vosk could not load the model in {path}: {exc}") from None


class VoskRecognizer(Recognizer):
    name = "vosk"

    def __init__(self, model_path: Path, rate: int = 16000, model=None) -> None:
        self.model_path = Path(model_path)
        self.rate = rate
        self._model = model if model is not None else load_vosk_model(self.model_path)
        self.grammar_json: str | None = None  # exactly what vosk was handed
        self._recognizer = self._new_recognizer()
        self._segments: list[tuple[str, float]] = []
        self._last_partial = ""

    def _new_recognizer(self):
        import vosk

        args = (self._model, self.rate) + ((self.grammar_json,) if self.grammar_json else ())
        try:
            rec = vosk.KaldiRecognizer(*args)
        except Exception as exc:  # some model damage only shows here, as a bare Exception
            raise RecognizerError(
                f"vosk could not start recognizing with the model in {self.model_path}: {exc}"
            ) from None
        rec.SetWords(True)
        return rec

    def set_grammar(self, grammar: Grammar | Sequence[str] | None) -> list[str]:
        if grammar is None:
            self.grammar_json = None
            self._recognizer = self._new_recognizer()
            return []
        phrases = grammar.phrases if isinstance(grammar, Grammar) else grammar
        kept = sayable_phrases(phrases, self.knows, f"vosk model in {self.model_path}")
        garbage = [UNKNOWN] if self.knows(UNKNOWN) else []
        self.grammar_json = json.dumps([*kept, *garbage], ensure_ascii=False)
        self._recognizer = self._new_recognizer()
        return kept

    def knows(self, word: str) -> bool:
        """Whether the model's vocabulary has `word` (vosk ignores unknown grammar words)."""
        return self._model.vosk_model_find_word(word) >= 0

    def start(self) -> None:
        self._recognizer.Reset()
        self._segments = []
        self._last_partial = ""

    def accept(self, pcm: bytes) -> Transcript | None:
        if self._recognizer.AcceptWaveform(pcm):
            self._take_segment(self._recognizer.Result())
            return None
        partial = json.loads(self._recognizer.PartialResult()).get("partial", "")
        if partial and partial != self._last_partial:
            self._last_partial = partial
            done = " ".join(t for t, _ in self._segments)
            return Transcript(text=f"{done} {partial}".strip(), confidence=0.0, final=False)
        return None

    def finish(self) -> Transcript:
        self._take_segment(self._recognizer.FinalResult())
        words = [(t, c) for t, c in self._segments if t]
        text = " ".join(t for t, _ in words)
        confidence = sum(c for _, c in words) / len(words) if words else 0.0
        return Transcript(text=text, confidence=confidence, final=True)

    def _take_segment(self, result_json: str) -> None:
        result = json.loads(result_json)
        for word in result.get("result", []):
            if word.get("word") and word["word"] != UNKNOWN:
                self._segments.append((word["word"], float(word.get("conf", 0.0))))
