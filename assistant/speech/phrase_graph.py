"""A phrase list as a minimal word graph (an acyclic finite-state grammar).

Phrases from templates share most of their words ("i need a video consultation",
"i need a phone consultation"). Decoding a flat list of alternatives costs time in
proportion to the list; a graph whose shared prefixes and suffixes are merged is small and
decodes in real time. States are numbered from 0 (start); every accepting state has an
empty transition to one final state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Transition = tuple[int, int, float, str] | tuple[int, int, float]


@dataclass(frozen=True)
class WordGraph:
    states: int
    start: int
    final: int
    transitions: list[Transition]

    def accepts(self, words: Sequence[str]) -> bool:
        current = {self.start}
        for word in words:
            current = {t[1] for t in self.transitions if t[0] in current and t[3:] == (word,)}
        return any(t[0] in current and len(t) == 3 and t[1] == self.final for t in self.transitions)


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

    canonical: dict[tuple, int] = {}
    merged_id: dict[int, int] = {}
    order = _postorder(trie)
    for node in order:
        key = (accepting[node], tuple(sorted((w, merged_id[c]) for w, c in trie[node].items())))
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
        edges = trie[node]
        outgoing = len(edges) + (1 if accepting[node] else 0)
        for word, child in sorted(edges.items()):
            transitions.append((src, numbering[merged_id[child]], 1.0 / outgoing, word))
        if accepting[node]:
            transitions.append((src, final, 1.0 / outgoing))
    return WordGraph(states=final + 1, start=0, final=final, transitions=transitions)


def _postorder(trie: list[dict[str, int]]) -> list[int]:
    order, stack = [], [(0, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        stack.append((node, True))
        stack.extend((child, False) for child in trie[node].values())
    return order
