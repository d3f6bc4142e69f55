"""Endpointing: a voice-activity detector decides where an utterance starts and ends.

webrtcvad labels each 10/20/30 ms frame as speech or not. An utterance starts once most
frames of a short window are speech, and ends after a run of non-speech frames as long as
the configured pause, at the maximum length, or, when nothing was said, at a timeout.

Older speakers pause mid-sentence ("I need ... a doctor"), so the pause that always ends an
utterance (`end_silence_ms`) is long. To answer promptly all the same, a short pause
(`quick_end_ms`) asks `complete()` whether the senior has finished (`CompleteRequest`):
the utterance ends there unless what was heard is only the start of a request.

"Only the start" is the grammar's verdict, not the intent engine's: the recognizer's
grammar search (the intents' sentences as a word graph) places the audio either on a whole
phrase or, when the words so far lead only into the middle of phrases ("i need a", "call
my"), on the start of one; it waits too when the grammar placed the audio nowhere. A last
word that runs on into the pause, little of it before the pause, is left out before that
is judged: the search fitted it into the silence ("call my wife" is "call my";
assistant/speech/sphinx.py). A recognizer with no grammar search to ask (vosk) ends only
what is understood at the short pause.
Whether the request is *understood* is a different question:
slowed and unfamiliar voices are often misheard (free recognition does not confirm the
grammar's phrase), and such a request used to wait the long pause only to be answered
"sorry?" 1.2 s later. Now it is answered as promptly as a clear one, and the dialog asks
again. Understood means the intent engine understands the transcript, or the grammar's
words when free recognition confirms them though they are no whole phrase (slowed speech:
"call my girl for"); those words are then the transcript. A request that is understood
ends at the short pause as before, so an emergency is never slower. Measured on
tests/endpoint_set.py (README, "Wake word and endpointing"): 63 of 64 end within 0.5 s of
the last word (48 at first, 62 before the last change), none cut at its inner pause,
in both orders of the set.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import webrtcvad

from assistant.config import EndpointConfig

if TYPE_CHECKING:
    from assistant.speech.recognizer import Recognizer, Transcript
    from intents import IntentEngine

log = logging.getLogger(__name__)


class EndReason(enum.Enum):
    END_OF_SPEECH = "end_of_speech"
    MAX_LENGTH = "max_length"
    NO_SPEECH = "no_speech"


@dataclass
class Utterance:
    audio: np.ndarray  # int16 mono, pre-roll included, trailing pause trimmed
    reason: EndReason
    speech_start_s: float  # since the endpointer was reset
    speech_end_s: float  # end of the last voiced frame
    decided_s: float  # when the end was decided (end of the frame that decided it)


class Endpointer:
    """Feed fixed-size frames; `feed` returns an Utterance once the end is decided.

    `complete()`, when given, is asked once per pause of `quick_end_ms` whether the
    utterance is already whole."""

    def __init__(
        self,
        config: EndpointConfig,
        rate: int = 16000,
        frame_ms: int = 30,
        complete: Callable[[], bool] | None = None,
    ) -> None:
        self.config = config
        self.complete = complete
        self.rate = rate
        self.frame_ms = frame_ms
        self.frame_bytes = rate * frame_ms // 1000 * 2
        self._vad = webrtcvad.Vad(config.vad_aggressiveness)
        self._start_window = max(1, config.speech_start_ms // frame_ms)
        self._end_frames = max(1, config.end_silence_ms // frame_ms)
        self._quick_frames = max(1, config.quick_end_ms // frame_ms)
        self._tail_frames = max(1, 150 // frame_ms)  # keep a little pause for the recognizer
        self.reset()

    def reset(self) -> None:
        self._frames_seen = 0
        self._pre_roll: collections.deque[tuple[bytes, bool]] = collections.deque(
            maxlen=max(self._start_window, self.config.pre_roll_ms // self.frame_ms)
        )
        self._speech: list[bytes] = []
        self._started_at: int | None = None
        self._last_voiced = -1
        self._silent_run = 0

    @property
    def in_speech(self) -> bool:
        return self._started_at is not None

    def speech_audio(self) -> bytes:
        """The utterance heard so far, pre-roll included (empty before speech starts)."""
        return b"".join(self._speech)

    def is_speech(self, frame: bytes) -> bool:
        return self._vad.is_speech(frame, self.rate)

    def feed(self, frame: bytes) -> Utterance | None:
        if len(frame) != self.frame_bytes:
            raise ValueError(f"frame must be {self.frame_bytes} bytes, got {len(frame)}")
        voiced = self.is_speech(frame)
        index = self._frames_seen
        self._frames_seen += 1
        if self._started_at is None:
            return self._feed_waiting(frame, voiced, index)
        return self._feed_speaking(frame, voiced, index)

    def _feed_waiting(self, frame: bytes, voiced: bool, index: int) -> Utterance | None:
        self._pre_roll.append((frame, voiced))
        recent = list(self._pre_roll)[-self._start_window :]
        if sum(v for _, v in recent) >= max(1, int(0.8 * self._start_window)):
            self._started_at = index - len(self._pre_roll) + 1
            self._speech = [f for f, _ in self._pre_roll]
            self._last_voiced = index
            self._pre_roll.clear()
            return None
        if self._seconds(index + 1) >= self.config.no_speech_timeout_s:
            return Utterance(
                audio=np.zeros(0, np.int16),
                reason=EndReason.NO_SPEECH,
                speech_start_s=0.0,
                speech_end_s=0.0,
                decided_s=self._seconds(index + 1),
            )
        return None

    def _feed_speaking(self, frame: bytes, voiced: bool, index: int) -> Utterance | None:
        self._speech.append(frame)
        if voiced:
            self._last_voiced = index
            self._silent_run = 0
        else:
            self._silent_run += 1
        assert self._started_at is not None
        if self._silent_run >= self._end_frames:
            return self._finish(EndReason.END_OF_SPEECH, index)
        quick = self._silent_run == self._quick_frames and self.complete is not None
        if quick and self.complete():  # type: ignore[misc]
            return self._finish(EndReason.END_OF_SPEECH, index)
        if self._seconds(index + 1 - self._started_at) >= self.config.max_utterance_s:
            return self._finish(EndReason.MAX_LENGTH, index)
        return None

    def flush(self) -> Utterance | None:
        """The input ended: close an utterance in progress as if speech had ended."""
        if self._started_at is None:
            return None
        return self._finish(EndReason.END_OF_SPEECH, self._frames_seen - 1)

    def _finish(self, reason: EndReason, index: int) -> Utterance:
        assert self._started_at is not None
        keep = len(self._speech)
        if reason is EndReason.END_OF_SPEECH:
            keep -= max(0, self._silent_run - self._tail_frames)
        audio = np.frombuffer(b"".join(self._speech[:keep]), np.int16).copy()
        utterance = Utterance(
            audio=audio,
            reason=reason,
            speech_start_s=self._seconds(self._started_at),
            speech_end_s=self._seconds(self._last_voiced + 1),
            decided_s=self._seconds(index + 1),
        )
        self.reset()
        return utterance

    def _seconds(self, frames: int) -> float:
        return frames * self.frame_ms / 1000.0


class CompleteRequest:
    """Has the senior finished? Asked at a short pause; the recognizer decodes what was
    heard so far. Yes when the intent engine understands it (the transcript, or the
    grammar's words when free recognition confirms them: `Transcript.grammar_words`), or
    when the recognizer's grammar search took it for a whole phrase
    (`Transcript.whole_phrase`); no when the grammar could place it only as the start of a
    phrase, or nowhere: then the long pause decides. Fed the same audio as the recognizer
    (`accept`); when the answer is yes, `transcript` is what was heard (what was
    understood), so it need not be decoded again."""

    def __init__(self, recognizer: Recognizer, engine: IntentEngine) -> None:
        self.recognizer = recognizer
        self.engine = engine
        self._audio = bytearray()
        self.transcript: Transcript | None = None

    def start(self) -> None:
        self._audio.clear()
        self.transcript = None

    def accept(self, pcm: bytes) -> None:
        self._audio += pcm
        self.transcript = None  # it no longer covers all the audio

    def __call__(self) -> bool:
        audio = bytes(self._audio)
        transcript = self.recognizer.transcribe(audio)
        self.recognizer.start()  # the utterance goes on: the recognizer hears it all again
        self.recognizer.accept(audio)
        understood = self._understood(transcript.text)
        words = transcript.grammar_words
        if not understood and words and words != transcript.text and self._understood(words):
            # The grammar's words, confirmed by free recognition, are what was understood:
            # they are the transcript the request is answered with. Confirmed only by their
            # letters: free recognition did not hear a request at all, so an emergency among
            # them is asked about, never alerted at once (awb's "my neighbour had a fall
            # last week", free "my neighbor had to fall last week", was "my neighbor has had
            # a fall off stool please", similarity 71).
            urgent = self.engine.is_emergency(words)
            transcript = dataclasses.replace(transcript, text=words, verified=not urgent)
            understood = True
        finished = understood or transcript.whole_phrase is True
        log.debug(
            "pause after %r: understood %s, a whole phrase %s: %s",
            transcript.text,
            understood,
            transcript.whole_phrase,
            "end" if finished else "wait",
        )
        self.transcript = transcript if finished else None
        return finished

    def _understood(self, text: str) -> bool:
        return bool(text) and self.engine.recognize(text) is not None


def frames_of(samples: np.ndarray, rate: int = 16000, frame_ms: int = 30) -> list[bytes]:
    """Split int16 audio into whole frames (a short last frame is padded with silence)."""
    size = rate * frame_ms // 1000
    pad = (-len(samples)) % size
    padded = np.concatenate([samples.astype(np.int16), np.zeros(pad, np.int16)])
    data = padded.tobytes()
    step = size * 2
    return [data[i : i + step] for i in range(0, len(data), step)]
