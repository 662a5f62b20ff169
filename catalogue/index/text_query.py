"""A searcher's text as clauses: words and quoted phrases, the concepts they name, OR and NOT.

    lung cancer CT -NSCLC        ->  ("lung cancer" | DOID:1324), (CT | DCM:CT), not NSCLC
    "head and neck" OR thyroid   ->  ("head and neck" | BPE:HEADNECK...) or thyroid

Runs of plain words are matched against concept labels longest first (`find_mentions`), and
words that name a concept together match as the concept or as those words (as a phrase when
they hold a stop word: "head and neck"); the other words are clauses of their own, stop words
left out. `OR` between two items makes them alternatives of one clause; `NOT x` and `-x`
exclude; `AND` is implied, loosened for long texts (`TextQuery.required`). What is left of
other query syntax is searched as words.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from catalogue.ontology.mentions import find_mentions
from catalogue.ontology.vocabulary import Vocabulary


@dataclass(frozen=True)
class Segment:
    """Words to match (in order and adjacent when `phrase`), or any of `concepts`."""

    words: tuple[str, ...]
    phrase: bool = False
    concepts: tuple[str, ...] = ()


@dataclass(frozen=True)
class TextQuery:
    """Clauses of alternatives, most of which a dataset must match, and excluded segments."""

    clauses: tuple[tuple[Segment, ...], ...]
    excluded: tuple[Segment, ...] = ()

    def required(self) -> int:
        """How many clauses must match: all of one or two, all but one of three to five, 80%
        of more (as Solr's `2<-1 5<80%`)."""
        n = len(self.clauses)
        return n if n <= 2 else n - 1 if n <= 5 else int(0.8 * n)


@dataclass
class _Item:
    words: list[str]
    phrase: bool
    negated: bool
    alternative: bool
    """Joined to the previous item by OR."""


_TOKENS = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_PARTS = re.compile(r"[\W_]+")
"""What separates the parts of a word ("PET/CT", "l'utérus") that may name concepts apart."""


def _items(text: str) -> list[_Item]:
    items: list[_Item] = []
    negate = alternative = False
    for match in _TOKENS.finditer(text):
        minus, phrase, word = match.groups()
        if word in ("AND", "&&"):
            continue
        if word in ("OR", "||"):
            alternative = bool(items)
            continue
        if word == "NOT":
            negate = True
            continue
        if phrase is not None:
            words, is_phrase, negated = phrase.split(), True, negate or bool(minus)
        else:
            negated = negate or (word.startswith("-") and len(word) > 1)
            words, is_phrase = [word.lstrip("+-") if negated else word.lstrip("+")], False
        if any(words):
            items.append(_Item([w for w in words if w], is_phrase, negated, alternative))
        negate = alternative = False
    return items


def parse(
    text: str,
    vocabulary: Vocabulary | None,
    is_stop_word: Callable[[str], bool] = lambda word: False,
) -> TextQuery:
    """The clauses of a text; no vocabulary: no concepts (plain words and phrases)."""
    clauses: list[list[Segment]] = []
    excluded: list[Segment] = []
    run: list[str] = []
    run_alternative = False

    def add(segment: Segment, alternative: bool) -> None:
        if alternative and clauses:
            clauses[-1].append(segment)
        else:
            clauses.append([segment])

    def flush() -> None:
        nonlocal run_alternative
        for i, segment in enumerate(_run_segments(run, vocabulary, is_stop_word)):
            add(segment, run_alternative and i == 0)
        run.clear()
        run_alternative = False

    for item in _items(text):
        if item.negated:
            flush()
            excluded.append(_segment(item.words, item.phrase, vocabulary))
        elif item.phrase:
            flush()
            add(_segment(item.words, True, vocabulary), item.alternative)
        else:
            if item.alternative:
                flush()
                run_alternative = True
            run.extend(part for word in item.words for part in _PARTS.split(word) if part)
    flush()
    if not clauses and not excluded:  # nothing but stop words: search them after all
        return TextQuery(tuple((Segment((w,)),) for item in _items(text) for w in item.words))
    return TextQuery(tuple(tuple(c) for c in clauses), tuple(excluded))


def _segment(words: list[str], phrase: bool, vocabulary: Vocabulary | None) -> Segment:
    """Words that must all match, or the concept they name together."""
    hits = vocabulary.lookup(" ".join(words)) if vocabulary is not None else ()
    return Segment(tuple(words), phrase, tuple(c.curie for c in hits))


def _run_segments(
    words: list[str], vocabulary: Vocabulary | None, is_stop_word: Callable[[str], bool]
) -> list[Segment]:
    """Segments of plain words: the concepts they name, then each remaining word."""

    def ignore(word: str) -> bool:  # "all" is not acute lymphoblastic leukaemia; "ALL" is
        return is_stop_word(word) and not word.isupper()

    if vocabulary is None:
        return [Segment((w,)) for w in words if not ignore(w)]
    segments: list[Segment] = []
    position = 0
    for mention in find_mentions(words, vocabulary, ignore):
        segments.extend(Segment((w,)) for w in words[position : mention.start] if not ignore(w))
        named = tuple(words[mention.start : mention.end])
        phrase = any(ignore(w) for w in named)  # "head and neck": not any "and"
        segments.append(Segment(named, phrase, mention.concepts))
        position = mention.end
    segments.extend(Segment((w,)) for w in words[position:] if not ignore(w))
    return segments
