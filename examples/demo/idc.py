"""Turn idc-index-data into demo providers: DCAT-AP catalogues plus series tables.

The 179 IDC collections are grouped by tumour site into six providers, as regional imaging
networks would hold them. Each provider gets a DCAT-AP 3 catalogue (one dataset per collection,
with its real title, description, identifier, cancer types, tumour locations, licence and DOI)
and a `dicom-table` source: that provider's rows of idc_index.parquet.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import yaml

from catalogue.dcat.serialiser import catalogue_graph
from catalogue.domain.models import Dataset, Provider
from catalogue.exceptions import ConfigError
from harvesters.dicom_table import OPTIONAL, REQUIRED

BASE_IRI = "https://w3id.org/cancer-imaging-catalogue/demo/"
ACCESS_RIGHTS = "http://publications.europa.eu/resource/authority/access-right/"
SERIES_COLUMNS = ("collection_id", *REQUIRED, *OPTIONAL)
"""What each provider's series table may hold: the dicom-table columns and the dataset column
(those of them that idc_index.parquet has)."""


@dataclass(frozen=True)
class Group:
    id: str
    name: str
    sites: tuple[str, ...]


GROUPS = (
    Group(
        "thoracic",
        "Thoracic Oncology Imaging Network",
        ("lung", "chest", "mediastinum", "thymus", "mesothelium", "thorax"),
    ),
    Group("breast", "Breast Imaging Consortium", ("breast",)),
    Group(
        "genitourinary",
        "Genitourinary and Gynaecological Imaging Centre",
        (
            "prostate",
            "kidney",
            "bladder",
            "uterus",
            "ovary",
            "cervix",
            "adrenal",
            "pelvis",
            "myometrium",
            "vagina",
            "genitourinary",
            "retroperitoneum",
        ),
    ),
    Group(
        "abdominal",
        "Abdominal and Gastrointestinal Imaging Hub",
        (
            "colon",
            "rectum",
            "pancreas",
            "liver",
            "stomach",
            "esophagus",
            "abdomen",
            "bile duct",
            "gallbladder",
            "intestine",
            "anus",
        ),
    ),
    Group(
        "neuro-head-neck",
        "Neuro-oncology and Head and Neck Imaging Group",
        ("brain", "head", "neck", "intraocular", "thyroid", "larynx", "oral", "lip", "spine"),
    ),
)
OTHER = Group("multi-site", "Multi-site, Haematology and Phantom Imaging Repository", ())


def idc_paths() -> tuple[Path, Path, str]:
    """Paths of idc_index.parquet and collections_index.parquet, and the package version."""
    try:
        import idc_index_data
    except ImportError as exc:  # the optional `demo` extra
        raise ConfigError(
            "the demo needs idc-index-data: pip install 'cancer-imaging-catalogue[demo]'"
        ) from exc
    found = idc_index_data.IDC_INDEX_PARQUET_FILEPATH
    if found is None:
        raise ConfigError("idc-index-data is installed without idc_index.parquet")
    series = Path(found)
    return series, series.with_name("collections_index.parquet"), idc_index_data.__version__


def group_of(tumor_locations: str | None) -> Group:
    """The provider of a collection, from its tumour locations: the site group of the first
    location; phantoms, 'Various' and collections spanning three or more sites go to OTHER."""
    text = (tumor_locations or "").casefold()
    locations = [loc.strip() for loc in text.split(",") if loc.strip()]
    if not locations or "phantom" in text or len(locations) >= 3:
        return OTHER
    for group in GROUPS:
        if any(site in locations[0] for site in group.sites):
            return group
    return OTHER


def _sql_string(path: Path) -> str:
    """A path as an SQL string literal (COPY TO takes no bound parameter)."""
    return "'" + str(path).replace("'", "''") + "'"


def _split(value: str | None) -> tuple[str, ...]:
    parts = (p.strip() for p in (value or "").split(","))
    return tuple(dict.fromkeys(p for p in parts if p))


def _dataset(row: dict[str, Any], provider_id: str) -> Dataset:
    sources = row["sources"] or []
    original = next((s for s in sources if s.get("source_type") == "original_data"), None)
    main = original or (sources[0] if sources else {})
    licence = (main.get("license") or {}).get("license_url")
    access = (main.get("Access") or "").casefold()
    modalities = _split(main.get("modalities"))
    cancer_types = _split(row["cancer_types"])
    sites = _split(row["tumor_locations"])
    keywords = tuple(dict.fromkeys((*cancer_types, *sites, *modalities, row["program_id"] or "")))
    return Dataset(
        provider_id=provider_id,
        identifier=row["collection_id"],
        iri=f"{BASE_IRI}{provider_id}/{row['collection_id']}",
        title=row["collection_name"],
        description=(row["description"] or "").strip(),
        keywords=tuple(k for k in keywords if k),
        cancer_types=cancer_types,
        body_sites=sites,
        modalities=modalities,
        license=licence or None,
        access_rights=ACCESS_RIGHTS + ("PUBLIC" if access == "public" else "RESTRICTED"),
        doi=main.get("source_doi") or None,
        landing_page=main.get("source_url") or None,
        number_of_unique_individuals=row["subjects"],
    )


def build(out: Path, force: bool = False) -> Path:
    """Write the demo providers under `out` and return the providers file; reuse a previous
    build of the same idc-index-data version unless `force`."""
    series_path, collections_path, version = idc_paths()
    providers_file = out / "providers.yaml"
    stamp = out / "build.json"
    reusable = not force and providers_file.exists() and stamp.exists()
    if reusable and json.loads(stamp.read_text()).get("idc_index_data") == version:
        return providers_file
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    rows = con.execute(
        "SELECT * FROM read_parquet($1) ORDER BY collection_id", [str(collections_path)]
    ).fetchall()
    names = [d[0] for d in con.description or []]
    collections = [dict(zip(names, r, strict=True)) for r in rows]
    members: dict[str, list[dict[str, Any]]] = {}
    for row in collections:
        members.setdefault(group_of(row["tumor_locations"]).id, []).append(row)

    present = {
        str(r[0])
        for r in con.execute(
            "DESCRIBE SELECT * FROM read_parquet($1)", [str(series_path)]
        ).fetchall()
    }
    columns = ", ".join(c for c in SERIES_COLUMNS if c in present)
    providers_yaml: list[dict[str, Any]] = []
    mapping: list[tuple[str, str]] = []
    for group in (*GROUPS, OTHER):
        group_rows = members.get(group.id, [])
        if not group_rows:
            continue
        folder = out / group.id
        folder.mkdir(exist_ok=True)
        provider = Provider(id=group.id, name=group.name, homepage=f"{BASE_IRI}{group.id}")
        datasets = [_dataset(r, group.id) for r in group_rows]
        graph = catalogue_graph(provider, f"{BASE_IRI}{group.id}/catalog", datasets)
        graph.serialize(folder / "catalog.ttl", format="turtle")
        ids = [r["collection_id"] for r in group_rows]
        mapping.extend((i, group.id) for i in ids)
        con.execute(
            f"COPY (SELECT {columns} FROM read_parquet($1) "
            "WHERE list_contains($2, collection_id) ORDER BY collection_id, PatientID) "
            f"TO {_sql_string(folder / 'series.parquet')} (FORMAT parquet, COMPRESSION zstd)",
            [str(series_path), ids],
        )
        providers_yaml.append(
            {
                "id": group.id,
                "name": group.name,
                "homepage": provider.homepage,
                "sources": [
                    {"kind": "dcat", "id": "catalogue", "path": f"{group.id}/catalog.ttl"},
                    {
                        "kind": "dicom-table",
                        "id": "idc-series",
                        "path": f"{group.id}/series.parquet",
                        "dataset_column": "collection_id",
                    },
                ],
            }
        )
    with (out / "collections.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["collection_id", "provider_id"])
        writer.writerows(sorted(mapping))
    header = "# Demo providers built from idc-index-data " + version + " (MIT). Generated.\n"
    providers_file.write_text(
        header + yaml.safe_dump({"providers": providers_yaml}, sort_keys=False)
    )
    stamp.write_text(json.dumps({"idc_index_data": version, "collections": len(collections)}))
    return providers_file
