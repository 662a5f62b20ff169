"""Concepts named in free text: the longest runs of words that equal a concept's label,
synonym or notation (any language), left to right."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from catalogue.ontology.vocabulary import Vocabulary, normalise

MAX_WORDS = 8
"""The longest label looked up, in words."""


@dataclass(frozen=True)
class Mention:
    """Words `start:end` of a text name `concepts`."""

    start: int
    end: int
    concepts: tuple[str, ...]


def find_mentions(
    words: Sequence[str],
    vocabulary: Vocabulary,
    ignore: Callable[[str], bool] = lambda word: False,
) -> list[Mention]:
    """Greedy longest-first matching of word runs against the vocabulary's labels. A run of
    one word for which `ignore` holds (a stop word, say "all" for ALL) names nothing."""
    keys = [normalise(w) for w in words]
    found: list[Mention] = []
    start = 0
    while start < len(keys):
        for end in range(min(len(keys), start + MAX_WORDS), start, -1):
            if end - start == 1 and ignore(words[start]):
                continue
            phrase = " ".join(k for k in keys[start:end] if k)
            hits = vocabulary.lookup(phrase) if phrase else ()
            if hits:
                found.append(Mention(start, end, tuple(c.curie for c in hits)))
                start = end
                break
        else:
            start += 1
    return found
