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
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

from assistant import replies
from assistant.announcer import Announcer
from assistant.config import EndpointConfig
from assistant.dialog import Action, Dialog, DialogReply
from assistant.emergency_check import EmergencyCheckStore
from assistant.endpoint import CompleteRequest, Endpointer, EndReason, Utterance
from assistant.routines import CareRoutines
from assistant.speech.recognizer import Recognizer
from assistant.speech.wake import Spotter
from assistant.voice import Voice
from intents import IntentEngine

log = logging.getLogger(__name__)

HISTORY_FRAMES = 100  # audio kept while waiting, to hand over what followed the wake phrase
WAKE_GAP_MS = 90  # a pause this long after the wake phrase ends it
WAKE_SETTLE_MS = 450  # look this far past the detection for that pause
PENDING_CHECK_MS = 500  # while waiting, look this often for announcements and reminders

_WAITING, _SETTLING, _LISTENING = "waiting", "settling", "listening"


@dataclass
class Turn:
    heard: str
    confidence: float
    intent: str | None
    slots: dict[str, str] = field(default_factory=dict)
    reply: str = ""
    actions: list[Action] = field(default_factory=list)
    expects_answer: bool = False  # the assistant asked something: listen on without waking
    end_reason: str = "text"
    endpoint_wait_s: float = 0.0  # audio time from the last word to the end decision
    decode_s: float = 0.0  # compute time from the end decision to the transcript


class Assistant:
    def __init__(
        self,
        engine: IntentEngine,
        voice: Voice,
        recognizer: Recognizer | None = None,
        wake: Spotter | None = None,
        endpoint: EndpointConfig | None = None,
        frame_ms: int = 30,
        clock: Callable[[], dt.datetime] = dt.datetime.now,
        chime: bool = True,
        on_action: Callable[[Action, str | None], object] | None = None,
        announcer: Announcer | None = None,
        routines: CareRoutines | None = None,
        on_say: Callable[[str], None] | None = None,
        indicator: Callable[[str], None] | None = None,
        checks: EmergencyCheckStore | None = None,
    ) -> None:
        """`on_action(action, said)`: carries out an action (see assistant/actions.py);
        `announcer`: what the services sent, said between turns; `routines`: reminders
        and check-ins, said when due, and their answers; `indicator(state)`: told idle,
        listening, thinking, speaking as they change (devices/indicator.py); `checks`:
        where an unanswered "do you need help?" is kept across a restart
        (assistant/emergency_check.py)."""
        self.engine = engine
        self.clock = clock
        self.dialog = Dialog(engine, clock, routines)
        self.on_action = on_action
        self.announcer = announcer
        self.routines = routines
        self.on_say = on_say
        self.indicator = indicator
        self.checks = checks
        # Whether a check of ours may be on disk. Not one a previous run left: that is
        # cleared only by alerting for it (resume_emergency_check), never by a new turn.
        self._check_on_disk = False
        self._resting = "idle"  # what the indicator returns to after an announcement
        self._speaking = threading.Lock()  # one sentence at a time, from any thread
        self.voice = voice
        self.recognizer = recognizer
        self.wake = wake
        # a short pause ends a request that is already whole (assistant/endpoint.py)
        self._complete = CompleteRequest(recognizer, engine) if recognizer else None
        self.endpointer = Endpointer(
            endpoint or EndpointConfig(), frame_ms=frame_ms, complete=self._complete
        )
        self.frame_samples = 16000 * frame_ms // 1000
        self._gap_frames = max(1, WAKE_GAP_MS // frame_ms)
        self._settle_frames = max(1, WAKE_SETTLE_MS // frame_ms)
        self._pending_frames = max(1, PENDING_CHECK_MS // frame_ms)
        self.chime = chime

    def respond(self, text: str, confidence: float = 1.0, verified: bool = True) -> Turn:
        """Understand `text`, take the dialog's actions and say its answer (`verified`
        False: the recognizer was not sure of the words, so the dialog checks first)."""
        if self.routines is not None:
            self.routines.activity(self.clock())
        self._show("thinking")
        match = self.engine.recognize(text)
        if match is not None and not verified:
            match = replace(match, method="unverified")
        if match is None:
            log.info("not understood (%d words)", len(text.split()))
        else:
            log.info("intent %s (%.2f, %s)", match.intent, match.confidence, match.method)
        log.debug("heard %r", text)
        turn = self._perform(self.dialog.hear(text, match), said=text)
        turn.heard, turn.confidence = text, confidence
        turn.intent = match.intent if match else None
        turn.slots = dict(match.slots) if match else {}
        return turn

    def no_answer(self) -> Turn:
        """Nothing was said after the assistant asked something (or after waking)."""
        reply = self.dialog.no_answer()
        if not reply.text and not reply.actions:
            reply = DialogReply(replies.NOTHING_HEARD)
        return self._perform(reply)

    def speak_pending(self) -> bool:
        """Say what the services sent and the reminders now due (between turns).

        True when what was said last asks for an answer (a medication reminder, the
        check-in): the dialog then listens for it without the wake phrase."""
        sentences = self.announcer.take() if self.announcer is not None else []
        prompts = []
        # While "do you need help?" waits for its answer, or right after an alert, a
        # reminder's question would take her answer ("no" to the pills would stand the
        # emergency down): it waits. Both end at her next words or the silence timeout.
        if self.routines is not None and not self.dialog.in_emergency():
            try:
                prompts = self.routines.tick(self.clock())
            except Exception:  # the reminders' file: what the family sent is said all the same
                log.exception("the reminders could not be checked; trying again")
        sentences += [prompt.text for prompt in prompts]
        for sentence in sentences:
            log.info("announcing (%d words)", len(sentence.split()))
            if self.on_say is not None:
                self.on_say(sentence)
            self._say(sentence)
            self._show(self._resting)
        if prompts and prompts[-1].expects is not None:
            self.dialog.expect(prompts[-1].expects, prompts[-1].on_silence)
            return True
        return False

    def resume_emergency_check(self) -> Turn | None:
        """Alert for a "do you need help?" that the last run asked and a restart cut short
        (no "no" came); None when there is none. Call once, before listening."""
        left = self.checks.left_open() if self.checks is not None else None
        if left is None:
            return None
        slots, asked_at = left
        log.warning("an emergency check asked at %s was never answered: alerting", asked_at)
        self._check_on_disk = True  # settled once the alert is out of our hands
        return self._perform(self.dialog.unanswered_check(slots))

    def resume_raised_alert(self, slots: dict[str, str]) -> Turn:
        """The device alerted, as it started, for a "do you need help?" the last run left
        unanswered (`emergency_check.alert_left_open`): say so, and listen after."""
        return self._perform(self.dialog.alert_raised(slots))

    def resume_unanswered_alert(self) -> Turn:
        """The last run raised an alert nobody has answered yet (the device sends it again):
        reassure, and listen without the wake phrase. Call once, before listening."""
        log.warning("an alert raised before the restart is still unanswered")
        return self._perform(self.dialog.resume_after_alert())

    def _perform(self, reply: DialogReply, said: str | None = None) -> Turn:
        """Actions first (an alert must not wait for a sentence to be spoken), then an
        emergency check written down or settled, then speech."""
        failed = [action.kind for action in reply.actions if not self._act(action, said)]
        if self.checks is not None:
            self._note_emergency_check()
        if failed:  # not what the reply promised: said instead of all of it
            self.dialog.not_done()
            failure = replies.EMERGENCY_FAILED if "emergency" in failed else replies.ACTION_FAILED
            reply = DialogReply(failure)
        if reply.text:
            self._say(reply.text)
        self._show("listening" if reply.expects_answer else "idle")
        return Turn(
            heard="",
            confidence=0.0,
            intent=None,
            reply=reply.text,
            actions=list(reply.actions),
            expects_answer=reply.expects_answer,
        )

    def _act(self, action: Action, said: str | None) -> bool:
        """Carry out an action; False when it failed (logged): the loop goes on, and the
        senior hears it was not done."""
        log.info("action %s", action.kind)
        if self.on_action is None:
            return True
        try:
            self.on_action(action, said)
        except Exception:
            log.exception("action %s failed", action.kind)
            return False
        return True

    def _note_emergency_check(self) -> None:
        """An open "do you need help?" on disk, for an alert after a restart; settled once
        answered. A write the disk refuses costs only that: the question is asked and its
        answer acted on all the same (a settling not written is tried again next turn)."""
        assert self.checks is not None
        try:
            asking = self.dialog.open_emergency_check()
            if asking is not None:
                self.checks.asked(asking, self.clock())
                self._check_on_disk = True
            elif self._check_on_disk:
                self.checks.settled()
                self._check_on_disk = False
        except Exception:
            log.exception("the emergency check could not be written down")

    def alert(self, trigger: str) -> Turn:
        """An emergency without words (the SOS key): alert, reassure, listen on."""
        log.info("emergency raised by %s", trigger)
        return self._perform(self.dialog.alert(trigger))

    def _say(self, sentence: str) -> None:
        with self._speaking:
            self._show("speaking")
            self.voice.say(sentence)

    def _show(self, state: str) -> None:
        if self.indicator is not None:
            self.indicator(state)

    def listen(
        self,
        frames: Iterable[bytes],
        wake_required: bool = True,
        button: Callable[[], bool] | None = None,
        sos: Callable[[], bool] | None = None,
    ) -> Iterator[Turn]:
        """Run the loop over `frames`, yielding one Turn per request heard (`sos()`: True
        when the emergency key was long-pressed, looked at every frame, in any state)."""
        if self.recognizer is None:
            raise ValueError("listening needs a recognizer")
        if wake_required and self.wake is None and button is None:
            raise ValueError("waking needs a wake-word spotter or a button")
        history: collections.deque[tuple[int, bytes]] = collections.deque(maxlen=HISTORY_FRAMES)
        # an answer awaited already (after an alert resumed at start) is listened for at once
        awaited = self.dialog.pending is not None
        state = _LISTENING if not wake_required or awaited else _WAITING
        if state is _LISTENING:
            self._begin_command()
        else:
            self._begin_waiting()
        position = 0  # samples since the wake spotter was reset
        pending: list[bytes] = []  # audio after the wake phrase, before the command starts
        for index, frame in enumerate(frames):
            turn = None
            if sos is not None and sos():
                state, pending = _LISTENING, []
                yield self.alert("sos_button")
                self._begin_command()
                continue
            if index % self._pending_frames == 0 and self._idle(state):
                answer_awaited = self.speak_pending()
                if answer_awaited and state is _WAITING:  # no wake word to answer a reminder
                    state = _LISTENING
                    self._begin_command()
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
                if wake_required and not turn.expects_answer:
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

    def _idle(self, state: str) -> bool:
        """Nobody is speaking to the assistant: a moment to say what is pending."""
        if state is _WAITING:
            return True
        return state is _LISTENING and not self.endpointer.in_speech

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
        self._resting = "idle"
        self._show("idle")
        if self.wake is not None:
            self.wake.reset()

    def _begin_command(self) -> None:
        assert self.recognizer is not None
        self._resting = "listening"
        self._show("listening")
        self.endpointer.reset()
        self.recognizer.start()
        if self._complete is not None:
            self._complete.start()

    def _feed_command(self, frames: list[bytes]) -> Turn | None:
        assert self.recognizer is not None
        for frame in frames:
            self.recognizer.accept(frame)
            if self._complete is not None:
                self._complete.accept(frame)
            speaking = self.endpointer.in_speech
            utterance = self.endpointer.feed(frame)
            if utterance is not None:
                return self._finish_command(utterance)
            if not speaking and self.endpointer.in_speech:
                self._hear_from_speech_start()
        return None

    def _hear_from_speech_start(self) -> None:
        """Speech began: the recognizer hears it from the endpointer's pre-roll on, not the
        silence before it (a long lead of silence, after a prompt answer, misled it)."""
        assert self.recognizer is not None
        heard = self.endpointer.speech_audio()
        self.recognizer.start()
        self.recognizer.accept(heard)
        if self._complete is not None:
            self._complete.start()
            self._complete.accept(heard)

    def _finish_command(self, utterance: Utterance) -> Turn:
        assert self.recognizer is not None
        self._show("thinking")
        started = time.perf_counter()
        early = self._complete.transcript if self._complete is not None else None
        if early is not None:  # decoded at the pause that ended it
            self.recognizer.start()
            transcript = early
        else:
            transcript = self.recognizer.finish()
        decode_s = time.perf_counter() - started
        if utterance.reason is EndReason.NO_SPEECH:
            log.info("nothing was said")
            turn = self.no_answer()
            turn.end_reason = utterance.reason.value
            return turn
        log.info(
            "utterance of %.1f s ended (%s); transcript ready %.0f ms after the decision",
            utterance.speech_end_s - utterance.speech_start_s,
            utterance.reason.value,
            decode_s * 1000,
        )
        turn = self.respond(transcript.text, transcript.confidence, transcript.verified)
        turn.end_reason = utterance.reason.value
        turn.endpoint_wait_s = utterance.decided_s - utterance.speech_end_s
        turn.decode_s = decode_s
        return turn
