"""Text analysis of the tantivy datasets index: one analyzer per language, and stop words.

Every analyzer splits on non-alphanumerics, drops tokens over 40 bytes, lowercases, stems
with the language's Snowball stemmer and then folds accents (after stemming, which needs
them): "Lungenkarzinome" -> "lungenkarzinom", "tumeurs pulmonaires" -> "tumeur pulmonair".
`plain` does the same without stemming, for text of no known language and for codes.
"""

from __future__ import annotations

from functools import cache, lru_cache

import tantivy

LANGUAGES = {
    "en": "english",
    "de": "german",
    "fr": "french",
    "es": "spanish",
    "it": "italian",
    "nl": "dutch",
}
"""Language tags with a field of their own, and their stemmers."""

PLAIN = "plain"
"""The analyzer (and field suffix) of text in no stemmed language."""


def analyzer_name(language: str) -> str:
    return f"catalogue_{language}"


def _builder() -> tantivy.TextAnalyzerBuilder:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
    )


@cache
def analyzer(language: str) -> tantivy.TextAnalyzer:
    """The analyzer of a language of `LANGUAGES`, or of `PLAIN`."""
    builder = _builder()
    if language != PLAIN:
        builder = builder.filter(tantivy.Filter.stemmer(LANGUAGES[language]))
    return builder.filter(tantivy.Filter.ascii_fold()).build()


def register(index: tantivy.Index) -> None:
    """Register every analyzer with an index (needed each time it is opened)."""
    for language in (*LANGUAGES, PLAIN):
        index.register_tokenizer(analyzer_name(language), analyzer(language))


@lru_cache(maxsize=1)
def _stop_filters() -> tuple[tantivy.TextAnalyzer, tuple[tantivy.TextAnalyzer, ...]]:
    """A tokenizer, and one analyzer per language that drops its stop words."""
    stops = (_builder().filter(tantivy.Filter.stopword(n)).build() for n in LANGUAGES.values())
    return _builder().build(), tuple(stops)


@lru_cache(maxsize=4096)
def is_stop_word(word: str) -> bool:
    """A word of one token that some language's stop-word list holds ("the", "du", "der")."""
    tokens, stops = _stop_filters()
    return len(tokens.analyze(word)) == 1 and any(not f.analyze(word) for f in stops)
