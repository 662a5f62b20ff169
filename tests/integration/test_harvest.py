"""Harvesting real DCAT files and series tables; bad sources fail alone and harm nothing."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rdflib import Graph

from catalogue.config import load_providers
from catalogue.domain.cohort import CohortQuery
from catalogue.domain.identifiers import dataset_graph
from catalogue.services.ingest import harvest
from catalogue.services.runtime import Catalogue

DATA = Path(__file__).parent.parent / "data" / "dcat"


def series_table(path: Path, rows: list[dict[str, object]]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def rows(n_patients: int, dataset: str = "ds-1", prefix: str = "P") -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for p in range(n_patients):
        for s in range(2):
            out.append(
                {
                    "collection_id": dataset,
                    "PatientID": f"{prefix}{p}",
                    "PatientName": f"Doe^Jane{p}",
                    "StudyInstanceUID": f"1.2.{prefix}.{p}",
                    "SeriesInstanceUID": f"1.2.{prefix}.{p}.{s}",
                    "PatientSex": "F" if p % 2 else "M",
                    "PatientAge": f"{40 + p:03d}Y",
                    "StudyDate": "20210305",
                    "Modality": "CT" if s == 0 else "SEG",
                    "BodyPartExamined": "CHEST",
                    "Manufacturer": "SIEMENS",
                    "instanceCount": 100,
                }
            )
    return out


def providers_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "providers.yaml"
    path.write_text(body)
    return path


def one_source(provider: str, source: str) -> str:
    """A providers-file entry with one source (YAML, indented for the `providers` list)."""
    return f"  - id: {provider}\n    name: {provider.upper()}\n    sources:\n      - {source}\n"


def sparql_datasets(path: Path) -> dict[str, str]:
    """Dataset identifiers and titles straight from the file, independently of the parser."""
    graph = Graph().parse(path)
    result = graph.query(
        """PREFIX dcat: <http://www.w3.org/ns/dcat#> PREFIX dct: <http://purl.org/dc/terms/>
        SELECT ?id ?title WHERE { ?d a dcat:Dataset ; dct:title ?title .
        OPTIONAL { ?d dct:identifier ?i } BIND(COALESCE(STR(?i), STR(?d)) AS ?id) }"""
    )
    return {str(r[0]): str(r[1]) for r in result}  # type: ignore[index]


def test_real_dcat_files_harvest(tmp_path: Path, catalogue: Catalogue) -> None:
    files = ["xnat_integration_test.ttl", "valid_project.ttl", "example_consus_ckan.ttl"]
    body = "providers:\n"
    for i, name in enumerate(files):
        body += one_source(f"p{i}", f"kind: dcat\n        path: {DATA / name}")
    report = harvest(catalogue, load_providers(providers_file(tmp_path, body)))
    assert report.ok, report.failed
    for i, name in enumerate(files):
        expected = sparql_datasets(DATA / name)
        assert expected, name
        page = catalogue.datasets.search(None, 0, 100, providers=(f"p{i}",))
        assert {d.identifier: d.title for d in page.datasets} == expected
        for identifier in expected:
            stored = catalogue.store.graph(dataset_graph(f"p{i}", identifier))
            assert len(stored) > 0


def test_bad_sources_fail_alone(tmp_path: Path, catalogue: Catalogue) -> None:
    good = series_table(tmp_path / "good.parquet", rows(12))
    body = f"""providers:
  - id: broken-rdf
    name: Broken RDF
    sources:
      - kind: dcat
        path: {DATA / "truncated_piveau_catalog.ttl"}
  - id: missing-table
    name: Missing table
    sources:
      - kind: dicom-table
        path: {tmp_path / "nowhere.parquet"}
        dataset: x
  - id: good
    name: Good
    sources:
      - kind: dcat
        path: {DATA / "valid_project.ttl"}
      - kind: dicom-table
        path: {good}
        dataset_column: collection_id
"""
    report = harvest(catalogue, load_providers(providers_file(tmp_path, body)))
    by_provider = {
        s.provider_id: s for s in report.sources if s.kind != "dcat" or s.provider_id != "good"
    }
    assert not by_provider["broken-rdf"].ok
    assert "truncated_piveau_catalog.ttl: not valid turtle" in (
        by_provider["broken-rdf"].error or ""
    )
    assert not by_provider["missing-table"].ok
    assert "nowhere.parquet: no such file" in (by_provider["missing-table"].error or "")
    good_reports = [s for s in report.sources if s.provider_id == "good"]
    assert all(s.ok for s in good_reports)
    assert sum(s.series for s in good_reports) == 24
    result = catalogue.cohort.count(CohortQuery())
    assert result.total.subjects == 12
    assert result.by_provider == {"good": result.total}


def test_failed_reharvest_keeps_previous_data(tmp_path: Path, catalogue: Catalogue) -> None:
    table = series_table(tmp_path / "series.parquet", rows(15))
    body = f"""providers:
  - id: h
    name: H
    sources:
      - kind: dicom-table
        id: pacs
        path: {table}
        dataset_column: collection_id
"""
    providers = load_providers(providers_file(tmp_path, body))
    assert harvest(catalogue, providers).ok
    before = catalogue.cohort.count(CohortQuery())
    assert before.total.subjects == 15
    assert before.total.series == 30

    table.write_bytes(table.read_bytes()[: len(table.read_bytes()) // 2])  # truncated file
    report = harvest(catalogue, providers)
    assert not report.ok
    assert catalogue.cohort.count(CohortQuery()) == before

    series_table(table, rows(20))  # a good re-harvest replaces, never duplicates
    assert harvest(catalogue, providers).ok
    after = catalogue.cohort.count(CohortQuery())
    assert after.total.subjects == 20
    assert after.total.series == 40


def test_bad_rows_are_counted_not_fatal(tmp_path: Path, catalogue: Catalogue) -> None:
    data = rows(11)
    data[0]["PatientID"] = None
    data[3]["SeriesInstanceUID"] = ""
    table = series_table(tmp_path / "series.parquet", data)
    body = f"""providers:
  - id: h
    name: H
    sources:
      - kind: dicom-table
        path: {table}
        dataset_column: collection_id
"""
    report = harvest(catalogue, load_providers(providers_file(tmp_path, body)))
    assert report.ok
    assert report.sources[0].series == 20
    assert report.sources[0].skipped == {"missing identifier or dataset": 2}


def test_csv_with_mapped_columns(tmp_path: Path, catalogue: Catalogue) -> None:
    csv = tmp_path / "series.csv"
    csv.write_text(
        "pid,study,series,sex,age,modality\n"
        "A,1.1,1.1.1,F,050Y,MR\nA,1.1,1.1.2,F,050Y,SEG\nB,1.2,1.2.1,M,030Y,MR\n"
    )
    body = f"""providers:
  - id: h
    name: H
    sources:
      - kind: dicom-table
        path: {csv}
        dataset: breast-mr
        columns: {{PatientID: pid, StudyInstanceUID: study, SeriesInstanceUID: series,
                   PatientSex: sex, PatientAge: age, Modality: modality}}
"""
    report = harvest(catalogue, load_providers(providers_file(tmp_path, body)))
    assert report.ok, report.failed
    result = catalogue.cohort.count(CohortQuery.model_validate({"series": [{"modality": ["seg"]}]}))
    assert result.total.subjects == 1
    assert result.total.series == 1
    assert result.by_dataset[("h", "breast-mr")].subjects == 1


def test_missing_required_column(tmp_path: Path, catalogue: Catalogue) -> None:
    table = series_table(tmp_path / "t.parquet", [{"PatientID": "a", "Modality": "CT"}])
    body = "providers:\n" + one_source(
        "h", f"kind: dicom-table\n        path: {table}\n        dataset: d"
    )
    report = harvest(catalogue, load_providers(providers_file(tmp_path, body)))
    assert not report.ok
    assert "missing required column(s): StudyInstanceUID, SeriesInstanceUID" in (
        report.sources[0].error or ""
    )


def test_no_identifier_reaches_the_index(tmp_path: Path, catalogue: Catalogue) -> None:
    table = series_table(tmp_path / "series.parquet", rows(12))
    body = "providers:\n" + one_source(
        "h", f"kind: dicom-table\n        path: {table}\n        dataset_column: collection_id"
    )
    assert harvest(catalogue, load_providers(providers_file(tmp_path, body))).ok
    catalogue.close()
    raw = b"".join(p.read_bytes() for p in (catalogue.settings.data_dir).rglob("*") if p.is_file())
    for secret in (b"Doe^Jane", b"1.2.P.3", b"20210305", b"P11"):
        assert secret not in raw, secret


def test_odd_values_do_not_stop_other_providers(tmp_path: Path, catalogue: Catalogue) -> None:
    odd = tmp_path / "odd.csv"
    odd.write_text(
        "PatientID,StudyInstanceUID,SeriesInstanceUID,instanceCount\n"
        "A,1,1.1,12.0\nB,2,2.1,many\nC,3,3.1,-4\n"
    )
    other = series_table(tmp_path / "other.parquet", rows(3))
    body = "providers:\n" + one_source(
        "a", f"kind: dicom-table\n        path: {odd}\n        dataset: d"
    )
    body += one_source("b", f"kind: dicom-table\n        path: {other}\n        dataset: d")
    report = harvest(catalogue, load_providers(providers_file(tmp_path, body)))
    assert report.ok, report.failed
    assert [s.series for s in report.sources] == [3, 6]


def test_unexpected_error_in_a_harvester_is_isolated(
    tmp_path: Path, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harvesters.dcat_files import DcatFileHarvester

    def broken(*args: object) -> None:
        raise RuntimeError("bug in a harvester")

    monkeypatch.setattr(DcatFileHarvester, "harvest", broken)
    table = series_table(tmp_path / "t.parquet", rows(2))
    body = "providers:\n" + one_source(
        "a", f"kind: dcat\n        path: {DATA / 'valid_project.ttl'}"
    )
    body += one_source("b", f"kind: dicom-table\n        path: {table}\n        dataset: d")
    report = harvest(catalogue, load_providers(providers_file(tmp_path, body)))
    assert [s.ok for s in report.sources] == [False, True]
    assert report.sources[0].error == "unexpected RuntimeError: bug in a harvester"
    assert catalogue.cohort.count(CohortQuery()).total.subjects == 2


def test_reindex_rebuilds_the_datasets_index_from_the_store(
    tmp_path: Path, catalogue: Catalogue
) -> None:
    from catalogue.services.ingest import reindex_all

    body = "providers:\n" + one_source(
        "p", f"kind: dcat\n        path: {DATA / 'valid_project.ttl'}"
    )
    assert harvest(catalogue, load_providers(providers_file(tmp_path, body))).ok
    expected = catalogue.datasets.all()
    catalogue.datasets.replace_provider("p", [])
    assert catalogue.datasets.all() == []
    assert reindex_all(catalogue) == {"p": len(expected)}
    assert catalogue.datasets.all() == expected


@pytest.mark.parametrize(
    ("suffix", "fmt"), [(".rdf", "xml"), (".jsonld", "json-ld"), (".nt", "nt")]
)
def test_every_serialisation_harvests_the_same(
    tmp_path: Path, catalogue: Catalogue, suffix: str, fmt: str
) -> None:
    source = Graph().parse(DATA / "xnat_integration_test.ttl")
    converted = tmp_path / f"catalogue{suffix}"
    converted.write_text(source.serialize(format=fmt))
    body = "providers:\n" + one_source("p", f"kind: dcat\n        path: {converted}")
    assert harvest(catalogue, load_providers(providers_file(tmp_path, body))).ok
    got = {d.identifier: d.title for d in catalogue.datasets.all()}
    assert got == sparql_datasets(DATA / "xnat_integration_test.ttl")


def test_remote_jsonld_context_is_a_clean_error(tmp_path: Path, catalogue: Catalogue) -> None:
    remote = tmp_path / "remote.jsonld"
    remote.write_text(
        '{"@context": "https://example.org/context.jsonld", "@id": "x", "title": "y"}'
    )
    body = "providers:\n" + one_source("p", f"kind: dcat\n        path: {remote}")
    report = harvest(catalogue, load_providers(providers_file(tmp_path, body)))
    assert not report.ok
    assert "remote.jsonld: not valid json-ld" in (report.sources[0].error or "")
