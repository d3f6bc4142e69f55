"""Wake-word spotting on the device with pocketsphinx's keyphrase search."""

from __future__ import annotations

from dataclasses import dataclass

from assistant.speech.recognizer import RecognizerError
from assistant.speech.sphinx import new_decoder, out_of_vocabulary
from intents.grammar import normalize_phrase

FRAME_SAMPLES = 160  # pocketsphinx analyses 10 ms frames at 16 kHz
RESTART_SAMPLES = 16000 * 30  # start a fresh search now and then so state stays small


class WakeWordError(RecognizerError):
    """The wake phrase cannot be spotted (e.g. a word the dictionary cannot spell)."""


@dataclass(frozen=True)
class WakeDetection:
    phrase: str
    end_sample: int  # where the phrase ended, counted in samples since reset()


class WakeWordSpotter:
    def __init__(self, phrase: str, threshold: float = 1e-20) -> None:
        self.phrase = normalize_phrase(phrase)
        if not self.phrase:
            raise WakeWordError("the wake phrase is empty")
        self._decoder = new_decoder(lm=False, kws_threshold=threshold)
        missing = out_of_vocabulary(self._decoder, self.phrase)
        if missing:
            raise WakeWordError(
                f"the wake phrase {phrase!r} has words the recognizer cannot spell: "
                + ", ".join(missing)
            )
        self._decoder.add_keyphrase("wake", self.phrase)
        self._decoder.activate_search("wake")
        self._started = False
        self.reset()

    def reset(self) -> None:
        """Forget everything heard; sample counting starts again at zero."""
        if self._started:
            self._decoder.end_utt()
        self._decoder.start_utt()
        self._started = True
        self._samples = 0  # since reset
        self._utt_offset = 0  # samples before the current decoder utterance

    def feed(self, pcm: bytes) -> WakeDetection | None:
        self._decoder.process_raw(pcm, full_utt=False)
        self._samples += len(pcm) // 2
        if self._decoder.hyp() is not None:
            segments = list(self._decoder.seg())
            end_frame = segments[-1].end_frame + 1 if segments else 0
            end = self._utt_offset + end_frame * FRAME_SAMPLES
            self._restart_utterance()
            return WakeDetection(phrase=self.phrase, end_sample=min(end, self._samples))
        if self._samples - self._utt_offset >= RESTART_SAMPLES:
            self._restart_utterance()
        return None

    def _restart_utterance(self) -> None:
        self._decoder.end_utt()
        self._decoder.start_utt()
        self._utt_offset = self._samples
