"""pocketsphinx: the embedded default recognizer; its US English model ships in the wheel.

A grammar (the phrases as a word graph) makes pocketsphinx hear only the assistant's
phrases: that is what makes "help, I fell" come through where the general language model
hears "fell by fell". But a grammar also forces anything else said ("play some music")
onto its nearest phrase. So with a grammar the same audio is decoded twice, in step, by
the grammar and by the free language model, and the grammar's answer is kept only when it
is a whole phrase that the free transcript resembles. Otherwise the free transcript is
returned for the intent engine to judge (it usually says "not understood", which is right
for "play some music"). Also trusting the grammar when the free transcript is unsure
(confidence below 0.25 or 0.4) was measured on the labelled set spoken by four flite voices
and refused: 2% more commands accepted, but 14 or 26 of 72 out-of-domain requests turned
into commands instead of 4. The one exception is an emergency: in noise the free model
hears nothing usable ("if five fifth"), so an emergency phrase from the grammar is kept
unconfirmed (`Transcript.verified` False) and the dialog asks "do you need help?" before
it alerts, and alerts when no answer comes.

Each utterance is decoded whole when it ends, with cepstral mean normalisation over the
whole utterance (`cmn=batch`) rather than the running estimate a streaming decode has to
use: in noise the running estimate starts far off and the first words are lost. On
emergency phrases spoken by four flite voices, whole-utterance decoding took grammar
recognition from 65 to 70 of 76 clean, from 54 to 66 with pink noise at 20 dB and from 14
to 28 with white noise at 10 dB. The price: no partial transcripts, and the decode happens
after the endpointer's pause instead of during the speech (bench: `finish_ms`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence

from rapidfuzz import fuzz

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

    def __init__(self, verify_threshold: float = 50.0) -> None:
        self.verify_threshold = verify_threshold
        self._free = new_decoder(lm=True, cmn=WHOLE_UTTERANCE_CMN)
        self._grammar = None  # a second decoder, searching the grammar
        self.grammar: WordGraph | None = None
        self._urgent: Callable[[str], bool] | None = None
        self._audio = bytearray()

    def set_grammar(self, grammar: Grammar | Sequence[str] | None) -> list[str]:
        if grammar is None:
            self._grammar, self.grammar = None, None
            return []
        decoder = (
            self._grammar
            if self._grammar
            else new_decoder(
                lm=False, wip=GRAMMAR_WORD_INSERTION_PROBABILITY, cmn=WHOLE_UTTERANCE_CMN
            )
        )

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
        return kept

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
        constrained = decode_whole(self._grammar, audio)
        if not constrained.text:
            return free
        similarity = fuzz.ratio(constrained.text, free.text)
        assert self.grammar is not None
        whole = self.grammar.accepts(constrained.text.split())
        if whole and similarity >= self.verify_threshold:
            return constrained
        if whole and self._urgent is not None and self._urgent(constrained.text):
            log.info("an urgent phrase kept without confirmation: the dialog will ask")
            return dataclasses.replace(constrained, verified=False)
        log.debug(
            "grammar answer %r not confirmed by free recognition %r (similarity %.0f)",
            constrained.text,
            free.text,
            similarity,
        )
        return free
