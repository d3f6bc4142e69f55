"""A phrase list as a minimal word graph (intents/grammar.py, formerly
assistant/speech/phrase_graph.py), and pocketsphinx taking it as its grammar."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from assistant.speech.sphinx import new_decoder, out_of_vocabulary
from intents.grammar import WordGraph, build_word_graph

CALLS = [
    "i need a video call",
    "i need a phone call",
    "you need a video call",
    "you need a phone call",
]


def words(phrase: str) -> list[str]:
    return phrase.split()


def outgoing_probabilities(graph: WordGraph) -> dict[int, float]:
    sums: dict[int, float] = defaultdict(float)
    for transition in graph.transitions:
        sums[transition[0]] += transition[2]
    return dict(sums)


def test_every_phrase_is_accepted() -> None:
    graph = build_word_graph(CALLS)
    for phrase in CALLS:
        assert graph.accepts(words(phrase)), phrase


@pytest.mark.parametrize(
    "phrase",
    [
        "",
        "i",
        "i need a video",  # a prefix
        "i need a video call now",  # an extension
        "need i a video call",  # other word orders
        "i need a call video",
        "call a phone need you",
        "i need video call",  # a word left out
        "we need a video call",  # a word not in the list
    ],
)
def test_anything_else_is_rejected(phrase: str) -> None:
    assert not build_word_graph(CALLS).accepts(words(phrase))


def test_shared_prefixes_and_suffixes_are_merged_into_the_minimal_graph() -> None:
    """A trie of the four phrases needs 15 states (start + 7 per subject) plus the final
    state. The minimal graph needs 7: start -(i|you)-> 1 -need-> 2 -a-> 3 -(video|phone)->
    4 -call-> 5 (accepting) -> final."""
    graph = build_word_graph(CALLS)
    assert graph.states == 7
    assert (graph.start, graph.final) == (0, 6)
    assert len(graph.transitions) == 8  # 2 + 1 + 1 + 2 + 1 words and one empty to final
    assert sum(len(t) == 3 for t in graph.transitions) == 1


def test_merging_never_accepts_a_phrase_that_was_not_given() -> None:
    """Only "i ... video" and "you ... phone": the tails "video call" and "phone call" end
    alike and merge, but "i need a phone call" must stay out."""
    graph = build_word_graph(["i need a video call", "you need a phone call"])
    assert graph.accepts(words("i need a video call"))
    assert graph.accepts(words("you need a phone call"))
    assert not graph.accepts(words("i need a phone call"))
    assert not graph.accepts(words("you need a video call"))
    # start, three states on each of the i/you branches, one state after video|phone (both
    # go on only with "call"), the accepting state after "call", final.
    assert graph.states == 1 + 2 * 3 + 1 + 1 + 1


def test_a_phrase_that_is_a_prefix_of_another_is_accepted_alongside_it() -> None:
    graph = build_word_graph(["help", "help me", "help me please", "please help me"])
    for phrase in ["help", "help me", "help me please", "please help me"]:
        assert graph.accepts(words(phrase)), phrase
    assert not graph.accepts(words("please help"))
    assert not graph.accepts(words("please"))
    assert not graph.accepts(words("me"))


def test_duplicates_do_not_change_the_graph() -> None:
    assert build_word_graph(CALLS + CALLS[:2]) == build_word_graph(CALLS)


@pytest.mark.parametrize(
    "phrases", [CALLS, ["help", "help me", "help me please"], ["yes", "no", "yes please"]]
)
def test_the_outgoing_probabilities_of_every_state_sum_to_one(phrases: list[str]) -> None:
    graph = build_word_graph(phrases)
    sums = outgoing_probabilities(graph)
    assert set(sums) == set(range(graph.states)) - {graph.final}  # only final has none
    for state, total in sums.items():
        assert total == pytest.approx(1.0), state
    assert all(0.0 < t[2] <= 1.0 for t in graph.transitions)


def test_the_graph_is_acyclic_and_every_state_is_reachable() -> None:
    graph = build_word_graph(CALLS)
    edges: dict[int, set[int]] = defaultdict(set)
    for transition in graph.transitions:
        edges[transition[0]].add(transition[1])
    seen, stack = set(), [(graph.start, False)]
    on_path: set[int] = set()
    while stack:
        state, leaving = stack.pop()
        if leaving:
            on_path.discard(state)
            continue
        assert state not in on_path, "cycle"
        if state in seen:
            continue
        seen.add(state)
        on_path.add(state)
        stack.append((state, True))
        stack.extend((nxt, False) for nxt in edges[state])
    assert seen == set(range(graph.states))


@pytest.fixture(scope="module")
def intent_phrases(engine) -> list[str]:
    return engine.phrases()


@pytest.fixture(scope="module")
def intent_graph(intent_phrases: list[str]) -> WordGraph:
    return build_word_graph(intent_phrases)


def test_the_intent_phrases_make_a_small_graph_that_accepts_them_all(
    intent_phrases: list[str], intent_graph: WordGraph
) -> None:
    assert len(intent_phrases) > 500
    assert intent_graph.states < len(intent_phrases) / 10
    for phrase in intent_phrases:
        assert intent_graph.accepts(words(phrase)), phrase
    assert not intent_graph.accepts(words("i need a video"))
    assert not intent_graph.accepts(words("play some music"))


def test_pocketsphinx_takes_the_intent_graph_and_decodes_with_it(speech, intent_phrases) -> None:
    decoder = new_decoder(lm=False)
    # As set_grammar does: phrases with words the dictionary lacks cannot be in a grammar.
    sayable = [phrase for phrase in intent_phrases if not out_of_vocabulary(decoder, phrase)]
    assert "i need a video consultation" in sayable
    graph = build_word_graph(sayable)
    fsg = decoder.create_fsg("g", graph.start, graph.final, graph.transitions)
    decoder.add_fsg("g", fsg)
    decoder.activate_search("g")
    assert decoder.current_search() == "g"
    flite = speech.flite("I need a video consultation.", "slt")
    samples = speech.samples(flite, lead_s=0.5, tail_s=0.5)
    decoder.start_utt()
    decoder.process_raw(samples.astype(np.int16).tobytes(), full_utt=True)
    decoder.end_utt()
    assert decoder.hyp() is not None
    assert decoder.hyp().hypstr == "i need a video consultation"


def test_pocketsphinx_refuses_a_graph_with_a_word_it_cannot_say() -> None:
    graph = build_word_graph(["i need a video consultation", "i need a zqxjkv"])
    decoder = new_decoder(lm=False)
    fsg = decoder.create_fsg("g", graph.start, graph.final, graph.transitions)
    with pytest.raises(RuntimeError):
        decoder.add_fsg("g", fsg)
