"""The pages in headless chromium on the IDC demo, each flow checked against the GraphQL API."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.browser import ui
from tests.browser.conftest import Site, Tab, record_timing, screenshot

WORD = "lung"


def facet_to_pick(site: Site) -> tuple[str, str, int]:
    """A MODALITY value that narrows the search for WORD: (value, label, its count)."""
    answer = site.graphql(ui.SEARCH, {"search": WORD, "first": 1})["datasets"]
    (modality,) = [f for f in answer["facets"] if f["field"] == "MODALITY"]
    narrowing = [v for v in modality["values"] if 0 < v["count"] < answer["totalCount"]]
    assert narrowing, f"the demo has no MODALITY value narrowing {WORD!r}"
    best = max(narrowing, key=lambda v: v["count"])
    return best["value"], best["label"], best["count"]


def shown_results(tab: Tab) -> list[tuple[str, str]]:
    rows: list[list[str]] = tab.page.locator("#results li.result").evaluate_all(
        "rows => rows.map(r => [r.dataset.provider, r.dataset.identifier])"
    )
    return [(p, i) for p, i in rows]


def test_search_with_a_facet(demo: Site, tab: Tab) -> None:
    page = tab.page
    value, label, count = facet_to_pick(demo)
    expected = demo.graphql(
        ui.SEARCH, {"search": WORD, "filter": {"modalities": [value]}, "first": 100}
    )["datasets"]
    assert expected["totalCount"] == count  # the facet count is the filtered total

    searched = demo.graphql(ui.SEARCH, {"search": WORD, "first": 1})["datasets"]["totalCount"]
    page.goto(f"{demo.url}/")
    page.locator("#results li.result").first.wait_for()  # the page's first listing, then type
    page.locator("#q").fill(WORD)
    page.locator("#q").press("Enter")  # Enter runs the search
    ui.expect(page.locator("#total")).to_have_text(ui.number(searched))
    box = page.locator(f'#facets fieldset[data-facet="MODALITY"] input[data-facet-value="{value}"]')
    label_of = "b => b.labels[0].textContent"
    count_of = "b => b.labels[0].querySelector('.count')?.textContent ?? ''"
    page.wait_for_function(  # the facets of the search, not those of the page before it
        f"""() => {{
          const b = document.querySelector('#facets fieldset[data-facet="MODALITY"] '
            + 'input[data-facet-value="{value}"]');
          return b && ({count_of})(b).replace(/\\D/g, '') === '{count}';
        }}"""
    )
    assert label in box.evaluate(label_of)
    box.check()
    total = page.locator("#total")
    ui.expect(total).to_have_text(ui.number(count))

    shown = shown_results(tab)
    api = [(e["node"]["provider"]["id"], e["node"]["identifier"]) for e in expected["edges"]]
    assert shown and shown == api[: len(shown)], (shown, api)
    if count > len(shown):
        assert page.locator("#next-page").is_enabled()
    assert page.locator("#results mark").count() > 0, "the search word is highlighted"

    state = parse_qs(urlsplit(page.url).query)
    assert state.get("q") == [WORD] and value in str(state), page.url  # state in the URL
    screenshot(page, "search")
    page.reload()  # the URL alone brings the same results back
    ui.expect(total).to_have_text(ui.number(count))
    assert shown_results(tab) == shown
    tab.assert_no_errors()


def test_search_page_load_time(demo: Site, tab: Tab) -> None:
    page = tab.page
    page.goto(f"{demo.url}/?q={WORD}")
    record_timing(
        "search: navigation to results", ui.first_seen(page, "results", "#results li.result")
    )
    page.goto(f"{demo.url}/")
    record_timing(
        "search (no words): navigation to results",
        ui.first_seen(page, "results", "#results li.result"),
    )
    tab.assert_no_errors()


def test_open_a_dataset(demo: Site, tab: Tab) -> None:
    page = tab.page
    page.goto(f"{demo.url}/?q={WORD}")
    first = page.locator("#results li.result").first
    first.wait_for()
    provider, identifier = (
        first.get_attribute("data-provider"),
        first.get_attribute("data-identifier"),
    )
    assert provider and identifier
    first.locator("a.result-title").click()
    page.wait_for_url(re.compile(rf"/datasets/{re.escape(provider)}/.+/view$"))
    expected = demo.graphql(ui.DATASET, {"provider": provider, "identifier": identifier})["dataset"]

    ui.expect(page.locator("h1")).to_have_text(expected["title"])
    page.locator("#provider").filter(has_text=expected["provider"]["name"]).wait_for()
    summary = expected["summary"] or {}
    subjects = summary.get("numberOfUniqueIndividuals")
    if subjects is not None:
        ui.expect(page.locator("#summary")).to_contain_text(ui.number(subjects))
    for part in ("#distributions", "#concepts", "#validation"):
        assert page.locator(part).count() == 1, f"{part} is on the page"
    rdf = page.locator("a.rdf").first
    href = rdf.get_attribute("href") or ""
    assert urlsplit(href).path.endswith(f"/datasets/{provider}/{identifier}")
    turtle = demo.api.get(href, headers={"Accept": "text/turtle"})
    assert turtle.status_code == 200 and "dcat:Dataset" in turtle.text
    screenshot(page, "dataset")
    tab.assert_no_errors()


def run_feasibility(site: Site, tab: Tab) -> tuple[dict[str, Any], dict[str, Any]]:
    """Build the two-level query, run it; returns (the tree built, the API's answer to it)."""
    page = tab.page
    page.goto(f"{site.url}/feasibility")
    page.wait_for_load_state("load")
    navigation = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
    record_timing("feasibility: navigation to load event", float(navigation))
    ready = ui.first_seen(page, "builder", "#criteria .add-criterion")
    record_timing("feasibility: navigation to builder ready", ready)
    tree = ui.build_two_level_query(page)
    started = page.evaluate("performance.now()")
    page.locator("#run-feasibility").click()
    seen = ui.first_seen(page, "chart", "#chart-providers g.bar")
    record_timing("feasibility: run to chart drawn", seen - float(started))
    answer = site.graphql(ui.FEASIBILITY, {"query": {"where": tree}})["feasibility"]
    return tree, answer


def test_two_level_feasibility_chart_equals_the_api(demo: Site, tab: Tab) -> None:
    page = tab.page
    tree, answer = run_feasibility(demo, tab)

    expected = ui.bars_of(answer["byProvider"], lambda row: row["provider"]["id"])
    assert any(suppressed == "false" for _, suppressed in expected.values()), answer
    assert ui.chart_bars(page, "#chart-providers", "provider") == expected, tree
    datasets = ui.bars_of(answer["byDataset"], lambda row: row["dataset"]["identifier"])
    assert len(datasets) == len(answer["byDataset"]), "dataset identifiers repeat across providers"
    assert ui.chart_bars(page, "#chart-datasets", "dataset") == datasets
    for level in ("subjects", "studies", "series"):
        count = answer[level]
        text = page.locator(f"#total-{level}").inner_text()
        if count["suppressed"]:
            assert "suppressed" in text.casefold()
        else:
            assert ui.digits(text) == str(count["value"]), (level, text, count)
    note = page.locator("#disclosure-note").inner_text()
    assert answer["explanation"]["disclosure"].strip() in note
    assert page.locator("#normalised-query").inner_text().strip()
    for download in ("#download-json", "#download-csv"):
        assert (page.locator(download).get_attribute("href") or "").startswith("blob:")
    screenshot(page, "feasibility")
    tab.assert_no_errors()


def approved_objects(site: Site, key: tuple[str, str, str]) -> set[str]:
    """What the API lists as approved for the value."""
    provider, field, value = key
    found = site.graphql(ui.APPROVED, {"provider": provider, "field": field})["mappings"]
    return {m["object"] for m in found if m["value"] == value}


def test_curator_approves_a_mapping(secured: Site, tab: Tab) -> None:
    page = tab.page
    assert secured.token
    page.goto(f"{secured.url}/curation")
    page.get_by_text(re.compile("curator sign-in required", re.I)).first.wait_for()
    ui.sign_in_with_token(page, secured.token)
    ui.first_seen(page, "unmapped", "#unmapped tr[data-value]")
    screenshot(page, "curation")

    key = ui.propose_for_row(secured, page, 0)  # arranged through the API
    provider, field, value = key
    unmapped = secured.graphql(ui.UNMAPPED, {"provider": provider, "field": field})
    offered = {
        p["object"]
        for u in unmapped["unmappedValues"]
        if u["value"] == value
        for p in u["proposals"]
    }
    assert ui.NO_TERM_FOUND in offered and not approved_objects(secured, key)
    ui.unmapped_row(page, key).locator("button.approve").first.click()
    for _ in range(100):
        if approved_objects(secured, key):
            break
        page.wait_for_timeout(100)
    approved = approved_objects(secured, key)
    assert approved and approved <= offered, (key, approved, offered)
    runs = secured.graphql(ui.RUNS)["harvestRuns"]
    if runs:
        assert page.locator("#runs").inner_text().strip()
    screenshot(page, "curation-approved")
    tab.assert_no_errors()
