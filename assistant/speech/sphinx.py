"""pocketsphinx: the embedded default recognizer; its US English model ships in the wheel.

A grammar (the phrases as a word graph) makes pocketsphinx hear only the assistant's
phrases: that is what makes "help, I fell" come through where the general language model
hears "fell by fell". But a grammar also forces anything else said ("play some music")
onto its nearest phrase. So with a grammar the same audio is decoded twice, in step, by
the grammar and by the free language model, and the grammar's answer is kept only when it
is a whole phrase that the free transcript resembles; otherwise the free transcript is
returned for the intent engine to judge (it usually says "not understood", which is right).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

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


class _Stream:
    """One decoder decoding one utterance."""

    def __init__(self, decoder) -> None:
        self.decoder = decoder
        self.active = False

    def start(self) -> None:
        if self.active:  # an utterance left open (the input stopped mid-way) is dropped
            self.decoder.end_utt()
        self.decoder.start_utt()
        self.active = True

    def accept(self, pcm: bytes) -> str:
        self.decoder.process_raw(pcm, full_utt=False)
        hyp = self.decoder.hyp()
        return hyp.hypstr if hyp is not None else ""

    def finish(self) -> Transcript:
        if self.active:
            self.decoder.end_utt()
            self.active = False
        hyp = self.decoder.hyp()
        text = hyp.hypstr.strip() if hyp is not None else ""
        return Transcript(text=text, confidence=_confidence(hyp, len(text.split())), final=True)


class PocketsphinxRecognizer(Recognizer):
    name = "pocketsphinx"

    def __init__(self, verify_threshold: float = 55.0) -> None:
        self.verify_threshold = verify_threshold
        self._free = _Stream(new_decoder(lm=True))
        self._grammar: _Stream | None = None
        self.grammar: WordGraph | None = None
        self._last_partial = ""

    def set_grammar(self, grammar: Grammar | Sequence[str] | None) -> list[str]:
        if grammar is None:
            self._grammar, self.grammar = None, None
            return []
        decoder = (
            self._grammar.decoder
            if self._grammar
            else new_decoder(lm=False, wip=GRAMMAR_WORD_INSERTION_PROBABILITY)
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
        self._grammar, self.grammar = _Stream(decoder), graph
        return kept

    def start(self) -> None:
        self._last_partial = ""
        self._free.start()
        if self._grammar:
            self._grammar.start()

    def accept(self, pcm: bytes) -> Transcript | None:
        text = self._free.accept(pcm)
        if self._grammar:
            text = self._grammar.accept(pcm) or text
        if text and text != self._last_partial:
            self._last_partial = text
            return Transcript(text=text, confidence=0.0, final=False)
        return None

    def finish(self) -> Transcript:
        free = self._free.finish()
        if not self._grammar:
            return free
        constrained = self._grammar.finish()
        if not constrained.text:
            return free
        similarity = fuzz.ratio(constrained.text, free.text)
        assert self.grammar is not None
        whole = self.grammar.accepts(constrained.text.split())
        if whole and similarity >= self.verify_threshold:
            return constrained
        log.debug(
            "grammar answer %r not confirmed by free recognition %r (similarity %.0f)",
            constrained.text,
            free.text,
            similarity,
        )
        return free
