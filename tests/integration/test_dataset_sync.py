"""Dataset descriptions across harvest runs: incremental writes, safeguarded deletions, atomic
replacement under a killed harvest, and the harvest log."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rdflib import Graph
from rdflib.compare import isomorphic

from catalogue.config import Settings, load_providers
from catalogue.domain.identifiers import dataset_graph
from catalogue.services.ingest import HarvestReport, harvest
from catalogue.services.runtime import Catalogue, open_catalogue

TEMPLATE = (Path(__file__).parent.parent / "data" / "dcat" / "valid_project.ttl").read_text()
"""A real img2catalog dataset (MIT); copies of it, renamed, make the generated catalogues."""
ORIGINAL_IRI = "http://localhost/data/archive/projects/test_img2catalog"
PROVIDER = "hospital"


HEAD, _, BODY = TEMPLATE.partition("\n\n")


def dataset_text(i: int, version: str = "v1") -> str:
    """The real example's dataset, renamed to project i of a version."""
    text = BODY.replace(ORIGINAL_IRI, f"https://example.org/projects/p{i}")
    return text.replace("Basic test project to test the img2catalog", f"Project {i} ({version})")


def catalogue_text(identifiers: list[int], version: str = "v1") -> str:
    """One Turtle catalogue holding a copy of the real example per identifier."""
    return "\n\n".join([HEAD, "", *(dataset_text(i, version) for i in identifiers)])


def write_catalogue(folder: Path, identifiers: list[int], version: str = "v1") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "catalog.ttl"
    path.write_text(catalogue_text(identifiers, version))
    return path


def providers_yaml(tmp_path: Path, source: Path, extra: str = "") -> Path:
    path = tmp_path / "providers.yaml"
    path.write_text(
        f"providers:\n  - id: {PROVIDER}\n    name: Hospital\n{extra}    sources:\n"
        f"      - kind: dcat\n        id: portal\n        path: {source}\n"
    )
    return path


def run(catalogue: Catalogue, providers: Path, allow_deletions: bool = False) -> HarvestReport:
    return harvest(catalogue, load_providers(providers), allow_deletions=allow_deletions)


def stored_identifiers(catalogue: Catalogue) -> set[str]:
    return {d.identifier for d in catalogue.datasets.all() if d.provider_id == PROVIDER}


def graph_name(i: int) -> str:
    return dataset_graph(PROVIDER, f"https://example.org/projects/p{i}")


class WriteSpy:
    """Records the dataset graphs the store is asked to write, by either way of writing (the
    real store still writes)."""

    def __init__(self, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: list[str] = []
        replace: Callable[..., None] = catalogue.store.replace_graphs
        add: Callable[..., None] = catalogue.store.add_graphs

        def replace_spy(graphs: dict[str, Graph], drop_prefix: str | None = None) -> None:
            self.names.extend(n for n in graphs if ":dataset:" in n)
            replace(graphs, drop_prefix)

        def add_spy(graphs: dict[str, Graph]) -> None:
            self.names.extend(n for n in graphs if ":dataset:" in n)
            add(graphs)

        monkeypatch.setattr(catalogue.store, "replace_graphs", replace_spy)
        monkeypatch.setattr(catalogue.store, "add_graphs", add_spy)


def test_unchanged_datasets_are_not_rewritten_and_changes_are(
    tmp_path: Path, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = list(range(10))
    source = write_catalogue(tmp_path / "src", ids)
    providers = providers_yaml(tmp_path, source)
    first = run(catalogue, providers).sources[0]
    assert (first.datasets, first.new, first.updated, first.unchanged) == (10, 10, 0, 0)

    spy = WriteSpy(catalogue, monkeypatch)
    second = run(catalogue, providers).sources[0]
    # re-parsed, so every blank node has a new label: still recognised as unchanged
    assert (second.new, second.updated, second.unchanged) == (0, 0, 10)
    assert spy.names == []

    changed = catalogue_text(ids).replace("Project 3 (v1)", "Project 3 (v2)")
    source.write_text(changed)
    third = run(catalogue, providers).sources[0]
    assert (third.new, third.updated, third.unchanged) == (0, 1, 9)
    assert spy.names == [graph_name(3)]
    titles = {d.identifier: d.title for d in catalogue.datasets.all()}
    assert titles["https://example.org/projects/p3"] == "Project 3 (v2)"
    assert titles["https://example.org/projects/p4"] == "Project 4 (v1)"


def test_deletions_happen_within_the_safeguard_only(tmp_path: Path, catalogue: Catalogue) -> None:
    source = write_catalogue(tmp_path / "src", list(range(10)))
    providers = providers_yaml(tmp_path, source)
    run(catalogue, providers)

    write_catalogue(tmp_path / "src", list(range(9)))  # one of ten gone: 10% <= 20%
    report = run(catalogue, providers).sources[0]
    assert (report.deleted, report.suspect) == (1, None)
    assert "https://example.org/projects/p9" not in stored_identifiers(catalogue)
    assert len(catalogue.store.graph(graph_name(9))) == 0

    write_catalogue(tmp_path / "src", list(range(5)))  # four of nine gone: 44% > 20%
    report = run(catalogue, providers).sources[0]
    assert report.ok and report.deleted == 0
    assert report.suspect is not None and "would delete 4 of 9" in report.suspect
    assert len(stored_identifiers(catalogue)) == 9
    assert len(catalogue.store.graph(graph_name(8))) > 0

    report = run(catalogue, providers, allow_deletions=True).sources[0]
    assert (report.deleted, report.suspect) == (4, None)
    assert len(stored_identifiers(catalogue)) == 5


def test_an_empty_or_failed_listing_deletes_nothing(tmp_path: Path, catalogue: Catalogue) -> None:
    source = write_catalogue(tmp_path / "src", list(range(4)))
    providers = providers_yaml(tmp_path, source)
    run(catalogue, providers)
    before = {i: catalogue.store.graph(graph_name(i)) for i in range(4)}

    empty = TEMPLATE.partition("\n\n")[0] + "\n<https://example.org/catalog> a dcat:Catalog .\n"
    source.write_text(empty)  # a valid catalogue listing no dataset at all
    report = run(catalogue, providers).sources[0]
    assert report.ok and report.datasets == 0 and report.deleted == 0
    assert report.suspect is not None and "empty listing" in report.suspect

    source.write_text(catalogue_text([0, 1])[:-200])  # truncated: the source fails
    report = run(catalogue, providers).sources[0]
    assert not report.ok and report.deleted == 0
    for i, graph in before.items():
        assert isomorphic(catalogue.store.graph(graph_name(i)), graph)
    assert len(stored_identifiers(catalogue)) == 4


def test_runs_are_recorded_and_queryable(tmp_path: Path, catalogue: Catalogue) -> None:
    source = write_catalogue(tmp_path / "src", list(range(5)))
    providers = providers_yaml(tmp_path, source)
    reports = [run(catalogue, providers)]
    write_catalogue(tmp_path / "src", [0, 1, 2, 3, 5], version="v2")
    reports.append(run(catalogue, providers))
    runs = catalogue.log.runs(last=10)
    assert [r.id for r in runs] == [reports[1].run_id, reports[0].run_id]
    latest = runs[0].sources[0]
    assert runs[0].ok and runs[0].ended is not None
    # p0..p3 changed title, p5 is new, p4 is gone (1 of 5 = 20%: allowed)
    assert (latest.datasets, latest.new, latest.updated, latest.deleted) == (5, 1, 4, 1)
    assert (runs[1].sources[0].new, runs[1].sources[0].deleted) == (5, 0)


# --- a harvest killed mid-way ---------------------------------------------------------------

CHILD = """
import sys
from pathlib import Path
from catalogue.config import Settings, load_providers
from catalogue.services.ingest import harvest
from catalogue.services.runtime import open_catalogue
settings = Settings(data_dir=Path(sys.argv[1]), secret="test-secret-0123456789")
with open_catalogue(settings) as catalogue:
    print("harvesting", flush=True)
    harvest(catalogue, load_providers(Path(sys.argv[2])))
print("done", flush=True)
"""


EXTRA = ("dcat:keyword", 'dcat:keyword "extra",')


def versions(identifiers: list[int], version: str, extra: bool = False) -> dict[str, Graph]:
    """Each dataset's description, by graph name, parsed from its own text alone (each copy
    of the example describes one dataset and its blank nodes, nothing shared)."""
    out = {}
    for i in identifiers:
        text = dataset_text(i, version)
        out[graph_name(i)] = Graph().parse(
            data=HEAD + "\n\n" + (text.replace(*EXTRA) if extra else text), format="turtle"
        )
    return out


def test_a_killed_harvest_leaves_each_dataset_old_or_new_never_mixed(tmp_path: Path) -> None:
    """300 datasets change (transactional replacements) and 300 are new (bulk-loaded in
    batches): after a SIGKILL, each changed one is old or new, each new one absent or whole."""
    ids, added = list(range(300)), list(range(300, 600))
    settings = Settings(data_dir=tmp_path / "base", secret="test-secret-0123456789")
    v1 = write_catalogue(tmp_path / "v1", ids, "v1")
    with open_catalogue(settings) as catalogue:
        assert run(catalogue, providers_yaml(tmp_path / "v1", v1)).ok
    v2_text = catalogue_text(ids + added, "v2").replace(*EXTRA)
    v2 = write_catalogue(tmp_path / "v2", ids, "v2")
    v2.write_text(v2_text)
    old, new = versions(ids, "v1"), versions(ids + added, "v2", extra=True)
    providers = providers_yaml(tmp_path / "v2", v2)
    killed_while_running = 0
    for attempt, delay in enumerate((0.2, 0.6, 1.0, 1.5, 2.2)):
        data = tmp_path / f"attempt-{attempt}"
        shutil.copytree(settings.data_dir, data)
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(data), str(providers)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "harvesting"
        time.sleep(delay)
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            killed_while_running += 1
        child.wait(timeout=60)
        with open_catalogue(Settings(data_dir=data, secret="test-secret-0123456789")) as opened:
            for name, graph in new.items():
                stored = opened.store.graph(name)
                if name in old:
                    assert isomorphic(stored, old[name]) or isomorphic(stored, graph), name
                else:
                    assert len(stored) == 0 or isomorphic(stored, graph), name
            assert opened.log.pending() == []
            # and the next harvest completes the change
            assert run(opened, providers).ok
            assert all(isomorphic(opened.store.graph(n), g) for n, g in new.items())
            titles = {d.title for d in opened.datasets.all()}
            assert titles == {f"Project {i} (v2)" for i in ids + added}
    assert killed_while_running >= 2


def test_graphs_a_crash_left_half_loaded_are_dropped_when_the_catalogue_opens(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data", secret="test-secret-0123456789")
    source = write_catalogue(tmp_path / "src", [0, 1, 2])
    kept = versions([0, 1, 2], "v1")
    with open_catalogue(settings) as catalogue:
        assert run(catalogue, providers_yaml(tmp_path, source)).ok
        # a harvest listed two new graphs as pending, loaded one and was killed
        loaded, unloaded = graph_name(7), graph_name(8)
        catalogue.log.add_pending([loaded, unloaded])
        catalogue.store.add_graphs({loaded: versions([7], "v1")[loaded]})
        assert len(catalogue.store.graph(loaded)) > 0
    with open_catalogue(settings) as reopened:
        assert reopened.log.pending() == []
        assert reopened.store.graph_names(dataset_graph(PROVIDER, "")) == sorted(kept)
        assert all(isomorphic(reopened.store.graph(n), g) for n, g in kept.items())
        # the datasets were never recorded: the next harvest that lists them writes them
        assert reopened.log.states(PROVIDER).keys() == {
            f"https://example.org/projects/p{i}" for i in (0, 1, 2)
        }


def test_drift_is_normalised_and_listed_in_the_report(tmp_path: Path, catalogue: Catalogue) -> None:
    clean = catalogue_text([0, 1, 2])
    drifted = clean.replace("<http://www.w3.org/ns/dcat#>", "<https://www.w3.org/ns/dcat#>")
    assert drifted != clean
    source = write_catalogue(tmp_path / "src", [])
    source.write_text(drifted)
    report = run(catalogue, providers_yaml(tmp_path, source)).sources[0]
    assert report.ok and report.datasets == 3
    # every dcat: term each dataset's description uses was rewritten once, and reported
    raw = Graph().parse(data=drifted, format="turtle")
    https_terms = sum(
        1
        for s, p, o in raw
        if str(p).startswith("https://www.w3.org/ns/dcat#")
        or str(o).startswith("https://www.w3.org/ns/dcat#")
    )
    assert len(report.normalisations) >= 3 and len(report.normalisations) <= https_terms
    assert all("https://www.w3.org/ns/dcat#" in line for line in report.normalisations)
    expected = versions([0, 1, 2], "v1")
    for name, graph in expected.items():
        assert isomorphic(catalogue.store.graph(name), graph)
    runs = catalogue.log.runs(1)
    assert runs[0].sources[0].normalisations == report.normalisations


def test_the_index_a_harvest_writes_equals_a_rebuild_from_the_store(
    tmp_path: Path, catalogue: Catalogue
) -> None:
    from catalogue.services.ingest import reindex_all

    folder = Path(__file__).parent.parent / "data" / "dcat"
    report = run(catalogue, providers_yaml(tmp_path, folder)).sources[0]
    assert report.new > 10  # (the folder also holds broken files, reported apart)
    harvested = catalogue.datasets.all()
    reindex_all(catalogue)
    assert catalogue.datasets.all() == harvested
