"""Generate the shipped vocabularies (ontologies/*.ttl) from the corpus and the curated tables.

    python -m catalogue.ontology.build --corpus ../shared/corpus --out ontologies

The output is deterministic: the same inputs give byte-identical files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from catalogue.exceptions import ConfigError
from catalogue.ontology.cancer_sources import doid_scheme, icd10cm_scheme, ncit_scheme
from catalogue.ontology.curie import CURIE_PREFIXES
from catalogue.ontology.dicom_sources import anatomy_schemes, modality_scheme
from catalogue.ontology.turtle import Label, SchemeRecord, to_turtle
from catalogue.ontology.vocabulary import ONTOLOGIES_DIR

ICD10CM_VERSION = "2026-04-01"
"""The ICD-10-CM tabular list in the corpus (simple-icd-10-cm 1.5.0, April 1, 2026)."""
ACCESS_RIGHT_SCHEME = "http://publications.europa.eu/resource/authority/access-right"
ACCESS_RIGHTS = ("PUBLIC", "RESTRICTED", "NON_PUBLIC")
"""The three EU access-right codes HealthDCAT-AP uses (catalogue.dcat.access_levels)."""


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
    for scheme in schemes:
        for concept in scheme.concepts.values():
            concept.pref = _one_per_language(concept.pref)
    return schemes


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
    for path in write(build(args.corpus, args.curated), args.out):
        print(f"{path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
