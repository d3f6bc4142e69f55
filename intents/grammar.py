"""Grammars for the recognizers, made from the same templates the engine matches.

A grammar is a word graph: states numbered from 0 (the start), transitions that read one
word or nothing, one final state. It is built either from a list of phrases (a trie whose
equal sub-graphs are merged: a minimal DAWG) or straight from the hassil templates
(alternatives, optional words, lists, rules), so that a template set that expands to
millions of sentences still becomes a graph of a few hundred states. Sentences with an open
slot (a wildcard: medication names, messages, times) are left out: what is said there is
heard by free recognition. pocketsphinx takes the graph as a finite-state grammar (or as
JSGF, `to_jsgf`); vosk takes phrases (`Grammar.phrases`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field

from hassil import Intents
from hassil.expression import (
    Alternative,
    Expression,
    Group,
    ListReference,
    Permutation,
    RuleReference,
    TextChunk,
)
from hassil.expression import Sequence as TemplateSequence
from hassil.intents import TextSlotList, WildcardSlotList

Transition = tuple[int, int, float, str] | tuple[int, int, float]

_DROP = re.compile(r"[^\w' ]+|_")


def normalize_phrase(text: str) -> str:
    """Lowercase, keep letters and digits of any script and apostrophes, fold white space."""
    return " ".join(_DROP.sub(" ", text.lower()).split())


@dataclass(frozen=True)
class WordGraph:
    states: int
    start: int
    final: int
    transitions: list[Transition]

    def words(self) -> set[str]:
        return {t[3] for t in self.transitions if len(t) == 4}

    def accepts(self, words: Sequence[str]) -> bool:
        current = self._closure({self.start})
        for word in words:
            current = self._closure(
                {t[1] for t in self.transitions if t[0] in current and t[3:] == (word,)}
            )
            if not current:
                return False
        return self.final in current

    def _closure(self, states: set[int]) -> set[int]:
        stack, seen = list(states), set(states)
        while stack:
            state = stack.pop()
            for t in self.transitions:
                if t[0] == state and len(t) == 3 and t[1] not in seen:
                    seen.add(t[1])
                    stack.append(t[1])
        return seen

    def without_words(self, unknown: set[str]) -> WordGraph:
        """The same graph without transitions on `unknown` words (paths through them end)."""
        kept = [t for t in self.transitions if len(t) == 3 or t[3] not in unknown]
        return WordGraph(self.states, self.start, self.final, _normalise_probabilities(kept))


@dataclass(frozen=True)
class Grammar:
    """What a recognizer listens for: the complete graph and a bounded list of phrases."""

    graph: WordGraph
    phrases: list[str] = field(default_factory=list)
    # Is this phrase too urgent to drop unconfirmed (an emergency)? None: nothing is.
    urgent: Callable[[str], bool] | None = field(default=None, compare=False)
    # The urgent sentences alone, for a second look at audio the full graph did not place
    # (noise); None: no second look.
    urgent_graph: WordGraph | None = field(default=None, compare=False)
    # Would the intents understand this text at all? (the second look is for what they don't)
    understood: Callable[[str], bool] | None = field(default=None, compare=False)


def _normalise_probabilities(transitions: Iterable[Transition]) -> list[Transition]:
    edges = list(transitions)
    outgoing: dict[int, int] = {}
    for t in edges:
        outgoing[t[0]] = outgoing.get(t[0], 0) + 1
    return [(t[0], t[1], 1.0 / outgoing[t[0]], *t[3:]) for t in edges]  # type: ignore[misc]


def build_word_graph(phrases: Sequence[str]) -> WordGraph:
    """Trie of the phrases, then equal sub-graphs merged bottom-up (a minimal DAWG)."""
    trie: list[dict[str, int]] = [{}]
    accepting = [False]
    for phrase in phrases:
        state = 0
        for word in phrase.split():
            nxt = trie[state].get(word)
            if nxt is None:
                nxt = len(trie)
                trie.append({})
                accepting.append(False)
                trie[state][word] = nxt
            state = nxt
        accepting[state] = True
    return _minimal_graph(trie, accepting)


def _minimal_graph(dfa: list[dict[str, int]], accepting: list[bool]) -> WordGraph:
    """Merge equal sub-graphs of an acyclic deterministic graph (state 0 the start) and
    give every accepting state an empty transition to one final state."""
    canonical: dict[tuple, int] = {}
    merged_id: dict[int, int] = {}
    order = _postorder(dfa)
    for node in order:
        key = (accepting[node], tuple(sorted((w, merged_id[c]) for w, c in dfa[node].items())))
        merged_id[node] = canonical.setdefault(key, len(canonical))

    # Renumber so that the start state is 0 and the final state is the last one.
    root = merged_id[0]
    reps = {merged_id[node]: node for node in order}
    numbering = {root: 0}
    for old in sorted(reps):
        if old != root:
            numbering[old] = len(numbering)
    final = len(numbering)
    transitions: list[Transition] = []
    for old, node in reps.items():
        src = numbering[old]
        for word, child in sorted(dfa[node].items()):
            transitions.append((src, numbering[merged_id[child]], 1.0, word))
        if accepting[node]:
            transitions.append((src, final, 1.0))
    return WordGraph(final + 1, 0, final, _normalise_probabilities(transitions))


def minimise(graph: WordGraph) -> WordGraph:
    """The smallest deterministic graph with the same sentences (subset construction,
    then merging). Decoding a deterministic graph is far cheaper than one full of empty
    transitions, and its per-state probabilities spread evenly over what can follow."""
    empty: dict[int, list[int]] = {}
    words: dict[int, list[tuple[str, int]]] = {}
    for t in graph.transitions:
        if len(t) == 3:
            empty.setdefault(t[0], []).append(t[1])
        else:
            words.setdefault(t[0], []).append((t[3], t[1]))

    reach: dict[int, frozenset[int]] = {}  # each state's own closure, memoised

    def own_closure(state: int) -> frozenset[int]:
        if state not in reach:
            stack, seen = [state], {state}
            while stack:
                for nxt in empty.get(stack.pop(), ()):
                    if nxt not in seen:
                        seen.add(nxt)
                        stack.append(nxt)
            reach[state] = frozenset(seen)
        return reach[state]

    def closure(states: Iterable[int]) -> frozenset[int]:
        return frozenset().union(*(own_closure(state) for state in states))

    start = closure([graph.start])
    index = {start: 0}
    dfa: list[dict[str, int]] = [{}]
    accepting = [graph.final in start]
    pending = [start]
    while pending:
        current = pending.pop()
        moves: dict[str, set[int]] = {}
        for state in current:
            for word, nxt in words.get(state, ()):
                moves.setdefault(word, set()).add(nxt)
        for word, targets in moves.items():
            target = closure(targets)
            if target not in index:
                index[target] = len(dfa)
                dfa.append({})
                accepting.append(graph.final in target)
                pending.append(target)
            dfa[index[current]][word] = index[target]
    return _minimal_graph(dfa, accepting)


def _postorder(graph: list[dict[str, int]]) -> list[int]:
    """States reachable from 0, every state after all its successors, each once (the
    graph is acyclic, so a visited successor is always finished)."""
    order: list[int] = []
    visited: set[int] = set()
    stack: list[tuple[int, bool]] = [(0, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if node in visited:
            continue
        visited.add(node)
        stack.append((node, True))
        stack.extend((child, False) for child in graph[node].values() if child not in visited)
    return order


class _OpenSlot(Exception):
    """The sentence has a wildcard: it cannot be part of a closed grammar."""


class _GraphBuilder:
    """Thompson-style construction: each expression becomes a piece of graph between two
    states, with empty transitions joining alternatives and skipping optional parts."""

    def __init__(self, intents: Intents) -> None:
        self.intents = intents
        self.states = 2  # 0: start, 1: final
        self.transitions: list[Transition] = []

    def new_state(self) -> int:
        self.states += 1
        return self.states - 1

    def add_sentence(self, expression: Expression, rules: dict) -> None:
        mark = (self.states, len(self.transitions))
        try:
            end = self.build(expression, 0, rules)
        except _OpenSlot:
            self.states, _ = mark
            del self.transitions[mark[1] :]
            return
        self.transitions.append((end, 1, 1.0))

    def build(self, expression: Expression, start: int, rules: dict) -> int:
        if isinstance(expression, TextChunk):
            state = start
            for word in normalize_phrase(expression.text).split():
                nxt = self.new_state()
                self.transitions.append((state, nxt, 1.0, word))
                state = nxt
            return state
        if isinstance(expression, ListReference):
            return self._list(expression.list_name, start, rules)
        if isinstance(expression, RuleReference):
            rule = rules.get(expression.rule_name)
            if rule is None:
                raise ValueError(f"unknown expansion rule <{expression.rule_name}>")
            return self.build(rule.expression, start, rules)
        if isinstance(expression, Permutation):
            raise ValueError("permutations (a;b) are not supported in grammars")
        if isinstance(expression, Alternative):
            return self._alternatives(expression.items, start, rules)
        if isinstance(expression, TemplateSequence | Group):
            state = start
            for item in expression.items:
                state = self.build(item, state, rules)
            return state
        raise ValueError(f"unsupported template expression {type(expression).__name__}")

    def _alternatives(self, items: Iterable[Expression], start: int, rules: dict) -> int:
        """An open slot in one alternative (e.g. an optional "[at {time}]") drops only that
        alternative; the sentence is open only when every alternative is."""
        join = self.new_state()
        closed = 0
        for item in items:
            mark = len(self.transitions)
            try:
                end = self.build(item, start, rules)
            except _OpenSlot:
                del self.transitions[mark:]
                continue
            self.transitions.append((end, join, 1.0))
            closed += 1
        if not closed:
            raise _OpenSlot("every alternative")
        return join

    def _list(self, name: str, start: int, rules: dict) -> int:
        slot_list = self.intents.slot_lists.get(name)
        if slot_list is None or isinstance(slot_list, WildcardSlotList):
            raise _OpenSlot(name)
        if not isinstance(slot_list, TextSlotList):
            raise _OpenSlot(name)  # number ranges: heard by free recognition for now
        return self._alternatives((value.text_in for value in slot_list.values), start, rules)

    def graph(self) -> WordGraph:
        return WordGraph(self.states, 0, 1, _normalise_probabilities(self.transitions))


def graph_from_templates(intents: Intents, only: Collection[str] | None = None) -> WordGraph:
    """Every closed sentence of every intent (or of the intents named in `only`) as one
    minimal word graph."""
    builder = _GraphBuilder(intents)
    for name, intent in intents.intents.items():
        if only is not None and name not in only:
            continue
        for data in intent.data:
            rules = {**intents.expansion_rules, **(data.expansion_rules or {})}
            for sentence in data.sentences:
                builder.add_sentence(sentence.expression, rules)
    return minimise(builder.graph())


def to_jsgf(graph: WordGraph, name: str = "commands") -> str:
    """The graph as a right-recursive JSGF grammar (one rule per state)."""
    arcs: dict[int, list[str]] = {}
    for t in graph.transitions:
        target = "<NULL>" if t[1] == graph.final else f"<s{t[1]}>"
        arcs.setdefault(t[0], []).append(f"{t[3]} {target}" if len(t) == 4 else target)
    lines = ["#JSGF V1.0;", f"grammar {name};", f"public <{name}> = <s{graph.start}>;"]
    for state in range(graph.states):
        if state == graph.final:
            continue
        alternatives = arcs.get(state) or ["<VOID>"]
        lines.append(f"<s{state}> = {' | '.join(alternatives)};")
    return "\n".join(lines) + "\n"
