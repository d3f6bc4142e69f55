"""The speech loop: wake → listen → recognise → understand → answer.

Frames (16 kHz mono int16, fixed length) come from a microphone or a file. While waiting,
only the wake-word spotter hears them; once it fires (or the action button is pressed, or
waking is off) the endpointer and the recognizer hear them in step, so the transcript is
ready moments after the senior stops speaking.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from assistant import replies
from assistant.config import EndpointConfig
from assistant.endpoint import Endpointer, EndReason, Utterance
from assistant.speech.recognizer import Recognizer
from assistant.speech.wake import WakeWordSpotter
from assistant.voice import Voice
from intents import IntentEngine

log = logging.getLogger(__name__)

HISTORY_FRAMES = 100  # audio kept while waiting, to hand over what followed the wake phrase
WAKE_GAP_MS = 90  # a pause this long after the wake phrase ends it
WAKE_SETTLE_MS = 450  # look this far past the detection for that pause

_WAITING, _SETTLING, _LISTENING = "waiting", "settling", "listening"


@dataclass
class Turn:
    heard: str
    confidence: float
    intent: str | None
    slots: dict[str, str] = field(default_factory=dict)
    reply: str = ""
    end_reason: str = "text"
    endpoint_wait_s: float = 0.0  # audio time from the last word to the end decision
    decode_s: float = 0.0  # compute time from the end decision to the transcript


class Assistant:
    def __init__(
        self,
        engine: IntentEngine,
        voice: Voice,
        recognizer: Recognizer | None = None,
        wake: WakeWordSpotter | None = None,
        endpoint: EndpointConfig | None = None,
        frame_ms: int = 30,
        clock: Callable[[], dt.datetime] = dt.datetime.now,
        chime: bool = True,
    ) -> None:
        self.engine = engine
        self.voice = voice
        self.recognizer = recognizer
        self.wake = wake
        self.endpointer = Endpointer(endpoint or EndpointConfig(), frame_ms=frame_ms)
        self.frame_samples = 16000 * frame_ms // 1000
        self._gap_frames = max(1, WAKE_GAP_MS // frame_ms)
        self._settle_frames = max(1, WAKE_SETTLE_MS // frame_ms)
        self.clock = clock
        self.chime = chime
        self.last_reply = ""

    def respond(self, text: str, confidence: float = 1.0) -> Turn:
        """Understand `text` and say the answer."""
        match = self.engine.recognize(text)
        if match is not None and match.intent == "repeat" and self.last_reply:
            reply = self.last_reply
        else:
            reply = replies.reply_for(match, self.clock())
        if match is None:
            log.info("not understood (%d words)", len(text.split()))
        else:
            log.info("intent %s (%.2f, %s)", match.intent, match.confidence, match.method)
        log.debug("heard %r", text)
        self.voice.say(reply)
        self.last_reply = reply
        return Turn(
            heard=text,
            confidence=confidence,
            intent=match.intent if match else None,
            slots=dict(match.slots) if match else {},
            reply=reply,
        )

    def listen(
        self,
        frames: Iterable[bytes],
        wake_required: bool = True,
        button: Callable[[], bool] | None = None,
    ) -> Iterator[Turn]:
        """Run the loop over `frames`, yielding one Turn per request heard."""
        if self.recognizer is None:
            raise ValueError("listening needs a recognizer")
        if wake_required and self.wake is None and button is None:
            raise ValueError("waking needs a wake-word spotter or a button")
        history: collections.deque[tuple[int, bytes]] = collections.deque(maxlen=HISTORY_FRAMES)
        state = _LISTENING if not wake_required else _WAITING
        if state is _LISTENING:
            self._begin_command()
        else:
            self._begin_waiting()
        position = 0  # samples since the wake spotter was reset
        pending: list[bytes] = []  # audio after the wake phrase, before the command starts
        for frame in frames:
            turn = None
            if state is _WAITING:
                history.append((position, frame))
                position += len(frame) // 2
                woke = self._check_wake(frame, button)
                if woke is None:
                    continue
                by_button, woke_at = woke
                pending = [f for start, f in history if start + self.frame_samples > woke_at]
                history.clear()
                state = _LISTENING if by_button else _SETTLING
                if by_button:
                    self._begin_command()
                    turn = self._feed_command(pending)
            elif state is _LISTENING:
                turn = self._feed_command([frame])
            else:
                pending.append(frame)
            if state is _SETTLING:
                begin = self._command_start(pending)
                if begin is None:
                    continue
                state = _LISTENING
                self._begin_command()
                turn = self._feed_command(pending[begin:])
            if turn is not None:
                yield turn
                if wake_required:
                    state, position = _WAITING, 0
                    self._begin_waiting()
                else:
                    self._begin_command()
        if state is _LISTENING:  # the input ended while listening
            utterance = self.endpointer.flush()
            if utterance is not None:
                yield self._finish_command(utterance)
            else:
                self.recognizer.finish()

    def _command_start(self, pending: list[bytes]) -> int | None:
        """Where the command begins in the audio that followed the wake phrase.

        The spotter fires as soon as the phrase is likely, often before its last syllable
        ends ("hey help|er"); that tail would be heard as a word of the command. So the
        command starts at the first short pause within the settle window, or, when the
        senior ran straight on without one, where the spotter fired. None: not decided yet.
        """
        voiced = [self.endpointer.is_speech(frame) for frame in pending]
        run = 0
        for index, is_voiced in enumerate(voiced):
            run = 0 if is_voiced else run + 1
            if run >= self._gap_frames:
                return index - run + 1
            if index - run + 1 >= self._settle_frames:
                return 0
        return None

    def _check_wake(
        self, frame: bytes, button: Callable[[], bool] | None
    ) -> tuple[bool, int] | None:
        """(by the button?, sample position after the wake), or None while still waiting."""
        if button is not None and button():
            log.info("action button pressed: listening")
            return True, 0
        if self.wake is None:
            return None
        detection = self.wake.feed(frame)
        if detection is None:
            return None
        log.info("wake phrase heard: listening")
        if self.chime:
            self.voice.chime()
        return False, detection.end_sample

    def _begin_waiting(self) -> None:
        if self.wake is not None:
            self.wake.reset()

    def _begin_command(self) -> None:
        assert self.recognizer is not None
        self.endpointer.reset()
        self.recognizer.start()

    def _feed_command(self, frames: list[bytes]) -> Turn | None:
        assert self.recognizer is not None
        for frame in frames:
            self.recognizer.accept(frame)
            utterance = self.endpointer.feed(frame)
            if utterance is not None:
                return self._finish_command(utterance)
        return None

    def _finish_command(self, utterance: Utterance) -> Turn:
        assert self.recognizer is not None
        started = time.perf_counter()
        transcript = self.recognizer.finish()
        decode_s = time.perf_counter() - started
        if utterance.reason is EndReason.NO_SPEECH:
            log.info("nothing was said after waking")
            self.voice.say(replies.NOTHING_HEARD)
            return Turn(
                heard="",
                confidence=0.0,
                intent=None,
                reply=replies.NOTHING_HEARD,
                end_reason=utterance.reason.value,
            )
        log.info(
            "utterance of %.1f s ended (%s); transcript ready %.0f ms after the decision",
            utterance.speech_end_s - utterance.speech_start_s,
            utterance.reason.value,
            decode_s * 1000,
        )
        if not transcript.text:
            self.voice.say(replies.NOT_UNDERSTOOD)
            turn = Turn(heard="", confidence=0.0, intent=None, reply=replies.NOT_UNDERSTOOD)
        else:
            turn = self.respond(transcript.text, transcript.confidence)
        turn.end_reason = utterance.reason.value
        turn.endpoint_wait_s = utterance.decided_s - utterance.speech_end_s
        turn.decode_s = decode_s
        return turn
