"""Generate the shipped vocabularies (ontologies/*.ttl) from the corpus and the curated tables,
and the default mapping set (ontologies/mappings/default.sssom.tsv, `default_mappings`).

    python -m catalogue.ontology.build --corpus ../shared/corpus --out ontologies

The output is deterministic: the same inputs give byte-identical files.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from catalogue.exceptions import ConfigError
from catalogue.ontology.cancer_sources import CC0, doid_scheme, icd10cm_scheme, ncit_scheme
from catalogue.ontology.curie import CURIE_PREFIXES, to_iri
from catalogue.ontology.default_mappings import (
    CURATED_TABLE,
    DEFAULT_SET_PATH,
    build_default_set,
    write_default_set,
)
from catalogue.ontology.dicom_sources import anatomy_schemes, modality_scheme
from catalogue.ontology.turtle import Label, SchemeRecord, to_turtle
from catalogue.ontology.vocabulary import ONTOLOGIES_DIR, load_vocabulary, normalise

ICD10CM_VERSION = "2026-04-01"
"""The ICD-10-CM tabular list in the corpus (simple-icd-10-cm 1.5.0, April 1, 2026)."""
ACCESS_RIGHT_SCHEME = "http://publications.europa.eu/resource/authority/access-right"
ACCESS_RIGHTS = ("PUBLIC", "RESTRICTED", "NON_PUBLIC")
"""The three EU access-right codes HealthDCAT-AP uses (catalogue.dcat.access_levels)."""
TRANSLATIONS = "labels-translations.tsv"
ENGLISH_SYNONYMS = "english-synonyms.tsv"
"""The curated table of hand-made labels in other languages (curie, language, label, kind)."""
TRANSLATIONS_RIGHTS = "Labels in other languages hand-made by the catalogue project (CC0 1.0)."
_LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(-[A-Z]{2})?")


def access_right_scheme() -> SchemeRecord:
    """The access-right codes, without labels: the corpus holds none of the EU table's labels."""
    scheme = SchemeRecord(
        key="access-right",
        title="EU access rights used by HealthDCAT-AP (codes only)",
        description=(
            "The three codes of the EU Publications Office access-right table that DCAT-AP and "
            "HealthDCAT-AP use for dct:accessRights. Their labels are not in the sources this "
            "build reads, so none is given; the concepts are also in the EU table's own scheme."
        ),
        version="dcat-ap-3.0.1",
        sources=[ACCESS_RIGHT_SCHEME, "https://github.com/SEMICeu/DCAT-AP"],
        licences=["https://creativecommons.org/licenses/by/4.0/"],
        rights="Codes of the EU access-right authority table, (c) European Union.",
    )
    for code in ACCESS_RIGHTS:
        concept = scheme.concept(CURIE_PREFIXES["ACCESS_RIGHT"] + code)
        concept.notation = code
        concept.schemes.add(ACCESS_RIGHT_SCHEME)
    return scheme


def build(corpus: Path, curated: Path) -> list[SchemeRecord]:
    """Every vocabulary, from the corpus folder and the curated tables."""
    for folder in ("ncit-neoplasm", "doid-cancer-slim", "icd10cm-ch2-neoplasms", "dicom-codes"):
        if not (corpus / folder).is_dir():
            raise ConfigError(f"corpus folder {corpus / folder} is missing")
    doid, do_terms = doid_scheme(corpus / "doid-cancer-slim")
    ncit = ncit_scheme(corpus / "ncit-neoplasm", do_terms, doid.version)
    icd = icd10cm_scheme(
        corpus / "icd10cm-ch2-neoplasms" / "icd10cm_2026_chapter2_neoplasms.csv",
        ICD10CM_VERSION,
    )
    regions, parts = anatomy_schemes(corpus / "dicom-codes", curated)
    schemes = [ncit, doid, icd, regions, parts, modality_scheme(corpus / "dicom-codes")]
    schemes.append(access_right_scheme())
    add_translations(schemes, curated / TRANSLATIONS)
    add_translations(schemes, curated / ENGLISH_SYNONYMS, english=True)
    for scheme in schemes:
        for concept in scheme.concepts.values():
            concept.pref = _one_per_language(concept.pref)
    return schemes


def add_translations(schemes: list[SchemeRecord], path: Path, english: bool = False) -> None:
    """Merge the hand-made translations into the concepts they name: `pref` rows as
    language-tagged skos:prefLabel, `alt` rows as skos:altLabel; a scheme that receives any also
    lists CC0 among its licences. ConfigError for a malformed row, an unknown concept, English
    (the sources' language), a second preferred label in one language, or a label that another
    concept of the same scheme has and this one has not (it would make a lookup ambiguous).
    With `english`, the table holds English synonyms instead: every row is an `en` alt label."""
    if not path.is_file():
        raise ConfigError(f"curated table {path} is missing")
    where = {iri: scheme for scheme in schemes for iri in scheme.concepts}
    # scheme key -> normalised label or notation -> IRIs of the concepts that carry it
    labels: dict[str, dict[str, set[str]]] = {}
    for scheme in schemes:
        index = labels.setdefault(scheme.key, {})
        for iri, c in scheme.concepts.items():
            for text in (*(x.text for x in (*c.pref, *c.alt, *c.hidden)), c.notation or ""):
                index.setdefault(normalise(text), set()).add(iri)
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [(n, line.split("\t")) for n, line in enumerate(lines, 1) if line and line[0] != "#"]
    if not rows or rows[0][1] != ["curie", "language", "label", "kind"]:
        raise ConfigError(f"{path}: the header must be curie, language, label, kind")
    for number, row in rows[1:]:
        at = f"{path}:{number}"
        if len(row) != 4 or not all(x and x == x.strip() for x in row):
            raise ConfigError(f"{at}: expected 4 non-empty tab-separated values")
        curie, language, text, kind = row
        try:
            iri = to_iri(curie)
        except ValueError as exc:
            raise ConfigError(f"{at}: {exc}") from exc
        target = where.get(iri)
        if target is None:
            raise ConfigError(f"{at}: {curie} is in no vocabulary")
        if english and (language, kind) != ("en", "alt"):
            raise ConfigError(f"{at}: an English synonym is an `en` `alt` label")
        if not english and (
            not _LANGUAGE_TAG.fullmatch(language) or language.partition("-")[0] == "en"
        ):
            raise ConfigError(f"{at}: {language!r} is not a language tag other than English")
        concept = target.concepts[iri]
        holders = labels[target.key].get(normalise(text), set())
        if holders and iri not in holders:  # a new ambiguity (a shared English label is not)
            raise ConfigError(f"{at}: {text!r} already labels {sorted(holders)[0]}")
        if kind == "pref":
            if any(x.language == language for x in concept.pref):
                raise ConfigError(f"{at}: {curie} has a preferred label in {language} already")
            concept.pref.append(Label(text, language))
        elif kind == "alt":
            if any((x.text, x.language) == (text, language) for x in (*concept.pref, *concept.alt)):
                raise ConfigError(f"{at}: {text!r}@{language} is listed twice for {curie}")
            concept.alt.append(Label(text, language))
        else:
            raise ConfigError(f"{at}: kind must be pref or alt, not {kind!r}")
        labels[target.key].setdefault(normalise(text), set()).add(iri)
        if CC0 not in target.licences:
            target.licences.append(CC0)
        if TRANSLATIONS_RIGHTS not in target.rights:
            target.rights = f"{target.rights} {TRANSLATIONS_RIGHTS}"


def _one_per_language(labels: list[Label]) -> list[Label]:
    """SKOS allows one preferred label per language: the first one given."""
    seen: dict[str, Label] = {}
    for label in labels:
        if label.text:
            seen.setdefault(label.language, label)
    return list(seen.values())


def write(schemes: list[SchemeRecord], out: Path) -> list[Path]:
    """One `<key>.ttl` per scheme in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for scheme in schemes:
        path = out / f"{scheme.key}.ttl"
        path.write_text(to_turtle(scheme), encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--corpus", type=Path, required=True, help="the shared corpus folder")
    parser.add_argument("--out", type=Path, default=ONTOLOGIES_DIR, help="output folder")
    parser.add_argument(
        "--curated",
        type=Path,
        default=ONTOLOGIES_DIR / "curated",
        help="folder of the hand-curated tables",
    )
    args = parser.parse_args(argv)
    written = write(build(args.corpus, args.curated), args.out)
    default_set = build_default_set(args.curated / CURATED_TABLE.name, load_vocabulary(written))
    written.append(write_default_set(default_set, args.out / "mappings" / DEFAULT_SET_PATH.name))
    for path in written:
        print(f"{path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
