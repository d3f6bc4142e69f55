"""pocketsphinx: the embedded default recognizer; its US English model ships in the wheel.

A grammar (the phrases as a word graph) makes pocketsphinx hear only the assistant's
phrases: that is what makes "help, I fell" come through where the general language model
hears "fell by fell". But a grammar also forces anything else said ("play some music")
onto its nearest phrase. So with a grammar the same audio is decoded twice, in step, by
the grammar and by the free language model, and the grammar's answer is kept only when it
is a whole phrase that the free transcript resembles. Otherwise the free transcript is
returned for the intent engine to judge (it usually says "not understood", which is right
for "play some music").

How much alike the two must be (`VERIFY_THRESHOLD`) was measured on the labelled set spoken
by four flite voices (every 12th command, every 3rd out-of-domain request, clean and with
white noise): at 50, 26 of 48 out-of-domain requests in a quiet room became commands (8 of
them emergencies); at 70, 4 of 48, and commands were recognised as often (58/64 against
56/64).

An emergency gets exceptions. In a quiet room, "help, I fell" by two of the four flite
voices comes out of the free model as "yelled at by fell" or "well but i felt" (similarity
57 and 62): an emergency phrase at `URGENT_SIMILARITY` or more is kept unconfirmed
(`Transcript.verified` False). At verify 50 the same similarity let 8 of 48 out-of-domain
requests through as emergencies; those are now asked about, not alerted. In noise (the
utterance's own estimated SNR below `NOISY_BELOW_DB`; a quiet room measures above 40) the
free model hears nothing usable ("if five fifth"), so
- an emergency phrase from the grammar is kept unconfirmed whatever the similarity;
- when nothing else was understood, the emergency sentences alone get a second look, on the
  audio with everything above `SECOND_LOOK_CUTOFF_HZ` removed (broadband noise lives up
  there, the vowels of "help" do not). Only in heavy noise (`SECOND_LOOK_BELOW_DB`): that
  grammar knows nothing but emergencies and forces any speech onto one.
Either way the dialog asks "do you need help?" before it alerts, and alerts when no answer
comes. It asks too when a long emergency sentence (`LONG_URGENT_WORDS`) is confirmed by
its letters but the free words are no emergency: the likeness then comes from the words
around the emergency. "my brother was a nurse in the war" by awb is "my brother has
collapsed in the hall" to the grammar and "my brother was a nurse in the wall" free
(similarity 80), and alerted the family at once. Short phrases keep the plain rule: the free
model mishears "help" ("helped by fell", similarity 80 to "help i fell"), and asking every
such senior first would delay most spoken emergencies. On the 72 out-of-domain requests of
tests/data/intents_en.jsonl by the four voices in a quiet room, through the endpointer, 2 of
288 were such alerts; of the 38 emergency requests by the same voices, 125 of 152 were sure
emergencies. Asking whenever the free words are no emergency, whatever the length, asked
about 10 of those 125 (and rms's "help, I fell" in tests/test_loop.py); from six words on, 3.
Measured (same set): emergencies at 10 dB SNR 6 → 23 of 76; at 20 dB 32 → 56 of 76
(26 sure, 30 asked); a quiet room asks nothing of anybody; at 10 dB a third of other
requests are answered with the question instead of "sorry, I did not understand".

Each utterance is decoded whole when it ends, with cepstral mean normalisation over the
whole utterance (`cmn=batch`) rather than the running estimate a streaming decode has to
use: in noise the running estimate starts far off and the first words are lost. On
emergency phrases spoken by four flite voices, whole-utterance decoding took grammar
recognition from 65 to 70 of 76 clean, from 54 to 66 with pink noise at 20 dB and from 14
to 28 with white noise at 10 dB. The price: no partial transcripts, and the decode happens
after the endpointer's pause instead of during the speech (bench: `finish_ms`).

The endpointer asks at a short pause whether the senior has finished
(`Transcript.whole_phrase`, assistant/endpoint.py): has the grammar search placed the audio
on a whole phrase? Not when it could place it only on the start of one ("call my"). A last
word that runs on to the end of the audio is left out before that is judged: it was fitted
into the pause, not said (a search that must end on a whole phrase pads the start of one,
"call my wife"; or a whole phrase with the start of a longer one, "find the doctor with").
The grammar's words are also handed to the endpointer when free recognition confirms them
(`Transcript.grammar_words`, the same `VERIFY_THRESHOLD`) though they are no whole phrase:
slowed kal16's "call my daughter" comes out as "call my girl for" (free: "call my vote
for"), which the search could not finish on a phrase but the intents understand.

pocketsphinx's answers at the margin depend on what the decoder heard before (seen: the
same 1.1 s of audio decoded "find me" fresh and "i'm achy" after four other utterances;
its noise removal is on), so a measurement on part of a set can differ from the whole's.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence

import numpy as np
from rapidfuzz import fuzz

from assistant.pcm import estimated_snr_db, frame_energies, low_pass
from assistant.speech.recognizer import Recognizer, RecognizerError, Transcript, sayable_phrases
from intents.grammar import Grammar, WordGraph, build_word_graph

log = logging.getLogger(__name__)

GRAMMAR_SEARCH = "grammar"
# With pocketsphinx's default word insertion probability (0.65) a grammar decode inserts
# short words at noise before speech ("five ten of clubs" for "ten of clubs" in the human
# recordings of the test data). Measured on those and on 28 flite commands: 0.65 gave 3/5
# and 27/28 right, 0.2 gave 4/5 and 26/28, 0.01 gave 4/5 and 23/28.
GRAMMAR_WORD_INSERTION_PROBABILITY = 0.2
WHOLE_UTTERANCE_CMN = "batch"  # the wake word spotter streams, and keeps the default "live"
# The grammar search in noise: pocketsphinx's default of 30,000 active HMMs a frame took 8 s
# for one noisy sentence on the full grammar; 2,000 gave the same answers on a sample of 16
# (clean and 10 dB) in a quarter of the time (noisy p50 0.8 s, p95 2.8 s).
GRAMMAR_MAX_HMM_PER_FRAME = 2000
VERIFY_THRESHOLD = 70.0
URGENT_SIMILARITY = 50.0  # in a quiet room an emergency phrase this close is still asked about
NOISY_BELOW_DB = 30.0
SECOND_LOOK_BELOW_DB = 18.0
SECOND_LOOK_CUTOFF_HZ = 3500.0
URGENT_SEARCH = "urgent"
LONG_URGENT_WORDS = 6  # an emergency sentence this long needs the free words to be one too
SAMPLES_PER_FRAME = 160  # pocketsphinx's 100 frames a second at 16 kHz
# A last word ending this close to the end of audio decoded after a pause of 300 ms or more
# runs on into the pause (Transcript.whole_phrase). It was fitted there, not said, when
# less than SAID_WORD_FRAMES of it lie before the pause (measured from the audio's energy):
# the search borrowed the tail of the word before it. On tests/endpoint_set.py the words
# fitted had 8-23 frames before the pause ("call my wife", "i'm a bit", "phone my down it",
# "... but"); rightly heard ones that the search stretched over the pause had 31-36 ("... my
# son", slowed awb's "what time is it"), and so had slowed awb's "fell", heard as "don't"
# (43): dropping it left "no i", the start of a phrase, and "help, I fell" waited the long
# pause. Its share of the word in the pause (45-54% against 62-83%) had less margin.
PAUSE_WORD_FRAMES = 10
SAID_WORD_FRAMES = 26
QUICK_PAUSE_FRAMES = 30  # the shortest pause the endpointer asks after (quick_end_ms, 300)
PAUSE_ABOVE_FLOOR_DB = 6.0  # a 10 ms frame this far above the quietest tenth is not pause


def model_dir() -> str:
    import pocketsphinx

    return os.path.join(pocketsphinx.get_model_path(), "en-us")


def new_decoder(lm: bool = True, **options: object):
    """A pocketsphinx Decoder on the bundled model, quiet unless asked."""
    import pocketsphinx

    model = model_dir()
    config: dict[str, object] = {
        "hmm": os.path.join(model, "en-us"),
        "dict": os.path.join(model, "cmudict-en-us.dict"),
        "logfn": os.devnull,
        "lm": os.path.join(model, "en-us.lm.bin") if lm else None,
    }
    config.update(options)
    try:
        return pocketsphinx.Decoder(**config)
    except (RuntimeError, ValueError, OSError) as exc:
        raise RecognizerError(
            f"pocketsphinx could not load its model from {model}: {exc}"
        ) from None


def out_of_vocabulary(decoder, phrase: str) -> list[str]:
    return [word for word in phrase.split() if decoder.lookup_word(word) is None]


def _confidence(hypothesis, words: int) -> float:
    """Utterance posterior spread over its words (geometric mean), so long sentences
    are not judged less sure only for being long."""
    if hypothesis is None or words == 0:
        return 0.0
    prob = max(min(float(hypothesis.prob), 1.0), 1e-300)
    return prob ** (1.0 / words)


def decode_whole(decoder, audio: bytes) -> Transcript:
    """One utterance decoded in one pass, normalised over all of it."""
    decoder.start_utt()
    if audio:
        decoder.process_raw(audio, no_search=False, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    text = hyp.hypstr.strip() if hyp is not None else ""
    return Transcript(text=text, confidence=_confidence(hyp, len(text.split())), final=True)


class PocketsphinxRecognizer(Recognizer):
    name = "pocketsphinx"

    def __init__(self, verify_threshold: float = VERIFY_THRESHOLD) -> None:
        self.verify_threshold = verify_threshold
        self._free = new_decoder(lm=True, cmn=WHOLE_UTTERANCE_CMN)
        self._grammar = None  # a second decoder, searching the grammar
        self.grammar: WordGraph | None = None
        self._second_look = None  # a third, searching the emergency sentences alone
        self._urgent_graph: WordGraph | None = None
        self._urgent: Callable[[str], bool] | None = None
        self._understood: Callable[[str], bool] | None = None
        self._audio = bytearray()

    def set_grammar(self, grammar: Grammar | Sequence[str] | None) -> list[str]:
        if grammar is None:
            self._grammar, self.grammar = None, None
            self._second_look = self._urgent_graph = None
            return []
        decoder = self._grammar if self._grammar else _grammar_decoder()

        def knows(word: str) -> bool:
            return decoder.lookup_word(word) is not None

        if isinstance(grammar, Grammar):
            unknown = {word for word in grammar.graph.words() if not knows(word)}
            if unknown:
                log.warning(
                    "grammar words the pronunciation dictionary lacks are left out: %s",
                    ", ".join(sorted(unknown)[:20]),
                )
            graph = grammar.graph.without_words(unknown)
            kept = [p for p in grammar.phrases if all(knows(w) for w in p.split())]
        else:
            kept = sayable_phrases(grammar, knows, "pronunciation dictionary")
            graph = build_word_graph(kept)
        try:
            fsg = decoder.create_fsg("commands", graph.start, graph.final, graph.transitions)
            decoder.add_fsg(GRAMMAR_SEARCH, fsg)
        except (RuntimeError, ValueError) as exc:
            raise RecognizerError(f"pocketsphinx rejected the grammar: {exc}") from None
        decoder.activate_search(GRAMMAR_SEARCH)
        self._grammar, self.grammar = decoder, graph
        self._urgent = grammar.urgent if isinstance(grammar, Grammar) else None
        self._understood = grammar.understood if isinstance(grammar, Grammar) else None
        self._set_second_look(grammar.urgent_graph if isinstance(grammar, Grammar) else None)
        return kept

    def _set_second_look(self, urgent: WordGraph | None) -> None:
        if urgent is None or self._urgent is None:
            self._second_look = self._urgent_graph = None
            return
        decoder = self._second_look or _grammar_decoder()
        graph = urgent.without_words(
            {word for word in urgent.words() if decoder.lookup_word(word) is None}
        )
        try:
            fsg = decoder.create_fsg(URGENT_SEARCH, graph.start, graph.final, graph.transitions)
            decoder.add_fsg(URGENT_SEARCH, fsg)
        except (RuntimeError, ValueError) as exc:
            raise RecognizerError(f"pocketsphinx rejected the emergency grammar: {exc}") from None
        decoder.activate_search(URGENT_SEARCH)
        self._second_look, self._urgent_graph = decoder, graph

    def start(self) -> None:
        self._audio.clear()  # an utterance left open (the input stopped mid-way) is dropped

    def accept(self, pcm: bytes) -> Transcript | None:
        """Collects the audio; the decode happens in finish() (no partial transcripts)."""
        self._audio += pcm
        return None

    def finish(self) -> Transcript:
        audio, self._audio = bytes(self._audio), bytearray()
        free = decode_whole(self._free, audio)
        if not self._grammar:
            return free
        samples = np.frombuffer(audio, dtype=np.int16)
        snr_db = estimated_snr_db(samples)
        constrained = decode_whole(self._grammar, audio)
        assert self.grammar is not None
        whole = bool(constrained.text) and self.grammar.accepts(constrained.text.split())
        before_pause = _words_before_the_pause(self._grammar, constrained.text, samples)
        whole_phrase = bool(before_pause) and self.grammar.accepts(before_pause)
        heard = " ".join(before_pause)
        confirmed = bool(heard) and fuzz.ratio(heard, free.text) >= self.verify_threshold
        found = {"whole_phrase": whole_phrase, "grammar_words": heard if confirmed else None}
        constrained = dataclasses.replace(constrained, **found)
        free = dataclasses.replace(free, **found)
        if whole:
            similarity = fuzz.ratio(constrained.text, free.text)
            if similarity >= self.verify_threshold:
                if self._confirmed_by_frame_words(constrained.text, free.text):
                    log.info("an urgent sentence the free model heard as something else: asking")
                    return dataclasses.replace(constrained, verified=False)
                return constrained
            plausible = snr_db < NOISY_BELOW_DB or similarity >= URGENT_SIMILARITY
            if plausible and self._is_urgent(constrained.text):
                log.info("an urgent phrase kept unconfirmed in noise: the dialog will ask")
                return dataclasses.replace(constrained, verified=False)
            log.debug(
                "grammar answer %r not confirmed by free recognition %r",
                constrained.text,
                free.text,
            )
        if snr_db < SECOND_LOOK_BELOW_DB and self._second_look is not None:
            urgent = self._look_again(samples, free.text)
            if urgent is not None:
                return urgent
        return free

    def _is_urgent(self, text: str) -> bool:
        return self._urgent is not None and self._urgent(text)

    def _confirmed_by_frame_words(self, grammar_text: str, free_text: str) -> bool:
        """A long emergency sentence whose likeness to the free words comes from the words
        around the emergency ("my brother ... in the ..."), not from an emergency the free
        model heard too."""
        long = len(grammar_text.split()) >= LONG_URGENT_WORDS
        return long and self._is_urgent(grammar_text) and not self._is_urgent(free_text)

    def _look_again(self, samples: np.ndarray, free_text: str) -> Transcript | None:
        """The emergency sentences alone, on the low-passed audio: an unconfirmed emergency,
        or None. Only when nothing else would be understood (`free_text` is not a request
        the intents know: `_understood`)."""
        if self._understood is not None and self._understood(free_text):
            return None
        filtered = low_pass(samples, SECOND_LOOK_CUTOFF_HZ).tobytes()
        heard = decode_whole(self._second_look, filtered)
        assert self._urgent_graph is not None
        words = heard.text.split()
        if not words or not self._urgent_graph.accepts(words) or not self._is_urgent(heard.text):
            return None
        log.info("heavy noise: the emergency sentences matched; the dialog will ask")
        return dataclasses.replace(heard, verified=False, whole_phrase=True)


def _words_before_the_pause(decoder, text: str, samples: np.ndarray) -> list[str]:
    """The words of `decoder`'s decode (`text`) without a last word fitted into the pause at
    the end of the audio. Asked after a pause, a grammar search pads the start of a phrase
    ("call my ...") with a word ("call my wife"), and a whole phrase with the start of a
    longer one ("find the doctor with"). What is left is what to judge: "call my" is the
    start of a request, "find the doctor" a whole. A last word that runs on to the end but
    has SAID_WORD_FRAMES or more before the pause was said, and the search only stretched
    it over the silence: it is kept."""
    words = text.split()
    segments = [seg for seg in decoder.seg() or () if not _is_filler(seg.word)]
    frames = len(samples) // SAMPLES_PER_FRAME
    if not words or not segments or segments[-1].end_frame < frames - PAUSE_WORD_FRAMES:
        return words
    last = segments[-1]
    pause_start = frames - max(QUICK_PAUSE_FRAMES, _pause_frames(samples))
    if min(last.end_frame + 1, pause_start) - last.start_frame < SAID_WORD_FRAMES:
        return words[:-1]
    return words


def _pause_frames(samples: np.ndarray) -> int:
    """How many 10 ms frames at the end of the audio are pause: not louder than
    PAUSE_ABOVE_FLOOR_DB above the recording's quietest tenth."""
    energy = frame_energies(samples, SAMPLES_PER_FRAME)
    if len(energy) == 0:
        return 0
    loud = np.flatnonzero(energy > np.percentile(energy, 10) * 10 ** (PAUSE_ABOVE_FLOOR_DB / 10))
    return len(energy) - int(loud[-1]) - 1 if len(loud) else len(energy)


def _is_filler(word: str) -> bool:
    return word.startswith(("<", "[", "(")) or word == "++"


def _grammar_decoder():
    return new_decoder(
        lm=False,
        wip=GRAMMAR_WORD_INSERTION_PROBABILITY,
        cmn=WHOLE_UTTERANCE_CMN,
        maxhmmpf=GRAMMAR_MAX_HMM_PER_FRAME,
    )
