"""Settings from the environment and the providers file, with errors that name line and field."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from catalogue import plugins
from catalogue.config import Settings, load_providers, read_providers
from catalogue.exceptions import ConfigError, PluginError
from catalogue.services.runtime import open_catalogue
from harvesters.dcat_files import DcatSource
from harvesters.dicom_table import DicomTableSource

GOOD = """\
providers:
  - id: hospital-a
    name: Hospital A
    sources:
      - kind: dcat
        path: a/catalog.ttl
      - kind: dicom-table
        path: a/series.parquet
        dataset: lung-ct
  - id: hospital-b
    name: Hospital B
    sources: []
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "providers.yaml"
    path.write_text(text)
    return path


def test_sources_are_a_discriminated_union(tmp_path: Path) -> None:
    parsed = load_providers(write(tmp_path, GOOD))
    first = parsed.providers[0]
    assert isinstance(first.sources[0], DcatSource)
    assert isinstance(first.sources[1], DicomTableSource)
    assert first.sources[0].path == tmp_path.resolve() / "a/catalog.ttl"


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        (GOOD.replace("kind: dicom-table", "kind: dicom-tabel"), 7, "providers.0.sources.1"),
        (GOOD.replace("        dataset: lung-ct\n", ""), 7, "providers.0.sources.1.dicom-table"),
        (GOOD.replace("    name: Hospital B\n", ""), 10, "providers.1.name"),
        (GOOD.replace("id: hospital-a", "id: 'bad id!'"), 2, "providers.0.id"),
        (
            GOOD.replace(
                "        path: a/catalog.ttl\n",
                "        path: a/catalog.ttl\n        colour: red\n",
            ),
            7,
            "colour",
        ),
    ],
)
def test_errors_name_line_and_field(tmp_path: Path, text: str, line: int, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_providers(write(tmp_path, text))
    message = str(caught.value)
    assert f"providers.yaml:{line}:" in message
    assert field in message


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_providers(write(tmp_path, "providers: [\n  - id: a\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_providers(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="empty"):
        load_providers(write(tmp_path, ""))


def test_duplicate_provider_ids(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="used twice: hospital-a"):
        load_providers(write(tmp_path, GOOD.replace("hospital-b", "hospital-a")))


def test_environment_with_nesting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CATALOGUE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CATALOGUE_DISCLOSURE__THRESHOLD", "20")
    monkeypatch.setenv("CATALOGUE_INDEX__COHORT", "duckdb")
    settings = Settings()
    assert settings.data_dir == tmp_path
    assert settings.disclosure.threshold == 20
    assert settings.disclosure.rounding == 5


def test_secret_is_generated_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = settings.master_secret()
    assert len(first) == 64
    assert Settings(data_dir=tmp_path).master_secret() == first


def test_unknown_backend_fails_at_start(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, index={"cohort": "sqlite"})
    with pytest.raises(
        PluginError, match=r"unknown cohort index 'sqlite' \(known: duckdb, elasticsearch\)"
    ):
        open_catalogue(settings)


def test_registered_names() -> None:
    assert plugins.available(plugins.HARVESTERS) == [
        "ckan",
        "clinical-table",
        "dcat",
        "dicom-files",
        "dicom-table",
        "dicomweb",
        "fdp",
        "federated-node",
        "sparql",
    ]
    assert plugins.available(plugins.GRAPH_STORES) == ["oxigraph", "sparql"]


def test_one_bad_provider_does_not_hide_the_others(tmp_path: Path) -> None:
    text = GOOD.replace("    name: Hospital B\n", "")
    parsed, errors = read_providers(write(tmp_path, text))
    assert [p.id for p in parsed.providers] == ["hospital-a"]
    assert len(errors) == 1
    assert "providers.yaml:10: providers.1.name: Field required" in errors[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- just a list\n", "providers.yaml:1: providers: a list of providers is required"),
        ("providers: []\nextras: 1\n", "providers.yaml:2: extras: unknown top-level key"),
    ],
)
def test_wrong_top_level_is_fatal(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        read_providers(write(tmp_path, text))


def test_noise_and_budgets_can_be_turned_off_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CATALOGUE_DISCLOSURE__EPSILON", "none")
    monkeypatch.setenv("CATALOGUE_DISCLOSURE__BUDGET_DAILY", "")
    monkeypatch.setenv("CATALOGUE_DISCLOSURE__BUDGET_TOTAL", "2.5")
    rules = Settings().disclosure
    assert rules.epsilon is None and rules.budget_daily is None and rules.budget_total == 2.5


def test_the_index_backend_setting_chooses_both_indexes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATALOGUE_INDEX__BACKEND", "elasticsearch")
    monkeypatch.setenv("CATALOGUE_INDEX__ELASTICSEARCH__URL", "https://es.example.org:9200")
    chosen = Settings().index
    assert (chosen.datasets, chosen.cohort) == ("elasticsearch", "elasticsearch")
    assert chosen.elasticsearch.url == "https://es.example.org:9200"
    monkeypatch.setenv("CATALOGUE_INDEX__BACKEND", "embedded")
    assert (Settings().index.datasets, Settings().index.cohort) == ("tantivy", "duckdb")
    monkeypatch.delenv("CATALOGUE_INDEX__BACKEND")
    monkeypatch.setenv("CATALOGUE_INDEX__COHORT", "elasticsearch")
    assert (Settings().index.datasets, Settings().index.cohort) == ("tantivy", "elasticsearch")
    monkeypatch.setenv("CATALOGUE_INDEX__BACKEND", "solr")
    with pytest.raises(ValidationError):
        Settings()
