"""Driving the pages by the ids and classes of the UI contract (/feasibility builder, sign-in,
chart reading) and the GraphQL questions the tests check them against."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page
    from playwright.sync_api._generated import LocatorAssertions

    from tests.browser.conftest import Site

SEARCH = """
query Search($search: String, $filter: DatasetFilter, $first: Int!) {
  datasets(search: $search, filter: $filter, first: $first) {
    totalCount
    edges { node { identifier title provider { id name } } }
    facets { field values { value label count } }
  }
}"""

DATASET = """
query Dataset($provider: ID!, $identifier: String!) {
  dataset(provider: $provider, identifier: $identifier) {
    title description provider { id name }
    summary { numberOfUniqueIndividuals numberOfRecords }
  }
}"""

FEASIBILITY = """
query Feasibility($query: FeasibilityQuery!) {
  feasibility(query: $query, explain: true) {
    subjects { value suppressed }
    studies { value suppressed }
    series { value suppressed }
    byProvider { provider { id } subjects { value suppressed } }
    byDataset { dataset { identifier } subjects { value suppressed } }
    explanation { disclosure }
  }
}"""

UNMAPPED = """
query Unmapped($provider: String!, $field: String!) {
  unmappedValues(provider: $provider, field: $field, first: 200) {
    value proposals { object status }
  }
}"""

NO_TERM_FOUND = "sssom:NoTermFound"

PROPOSE = """
mutation Propose($provider: String!, $field: String!, $value: String!, $object: String!) {
  proposeMapping(provider: $provider, field: $field, value: $value, object: $object,
                 comment: "proposed by the browser tests") { version }
}"""

APPROVED = """
query Approved($provider: String!, $field: String!) {
  mappings(status: APPROVED, provider: $provider, field: $field) { value object status }
}"""

RUNS = "{ harvestRuns(last: 10) { id } }"


def expect(locator: Locator) -> LocatorAssertions:
    """Playwright's retrying assertions (imported here: without playwright the tests skip)."""
    from playwright.sync_api import expect as retrying

    return retrying(locator)


def digits(text: str) -> str:
    """The digits of a displayed number ("1,234" and "1 234" read as 1234)."""
    return re.sub(r"\D", "", text)


def number(value: int) -> re.Pattern[str]:
    """A displayed count, with or without thousands separators, not part of a larger number."""
    return re.compile(rf"(?<![\d,]){value:,}(?![\d,])|(?<!\d){value}(?!\d)")


def first_seen(page: Page, name: str, selector: str) -> float:
    """Milliseconds from navigation start to the first appearance of the watched element
    `name` (conftest.WATCHED), once `selector` is visible."""
    page.locator(selector).first.wait_for(state="visible")
    seen = page.evaluate(f"window.__firstSeen[{name!r}] ?? performance.now()")
    return float(seen)


def choose(select: Locator, *wanted: str) -> str:
    """Select the option whose value or label is one of `wanted` (case-insensitive)."""
    options: list[dict[str, str]] = select.evaluate(
        "s => [...s.options].map(o => ({value: o.value, label: o.label || o.text}))"
    )
    keys = {w.casefold() for w in wanted}
    for option in options:
        if option["value"].casefold() in keys or option["label"].strip().casefold() in keys:
            select.select_option(value=option["value"])
            return option["value"]
    raise AssertionError(f"no option {wanted} in {select}: {options}")


def set_value(criterion: Locator, *wanted: str) -> None:
    """Give a criterion its value: a checkbox or radio, an option of a select, or typed text."""
    keys = {w.casefold() for w in wanted}
    boxes = criterion.locator("input[type=checkbox], input[type=radio]")
    for i in range(boxes.count()):
        box = boxes.nth(i)
        label = box.evaluate("b => (b.labels?.[0]?.textContent ?? '').trim()")
        if (box.get_attribute("value") or "").casefold() in keys or label.casefold() in keys:
            box.check()
            return
    selects = criterion.locator("select:not(.criterion-kind):not(.criterion-level)")
    if selects.count():
        choose(selects.first, *wanted)
        return
    field = criterion.locator("input:not([type=checkbox]):not([type=radio]):not([type=hidden])")
    field.first.fill(wanted[0])
    field.first.press("Tab")


def add_criterion(group: Locator, kind: tuple[str, ...], value: tuple[str, ...]) -> Locator:
    """Add a criterion of `kind` with `value` to `group` (its own add button, the first one in
    it before any nested group exists); returns the criterion."""
    criteria = group.locator(".criterion")
    before = criteria.count()
    group.locator(".add-criterion").first.click()
    criteria.nth(before).wait_for()
    criterion = criteria.nth(before)
    choose(criterion.locator("select.criterion-kind"), *kind)
    set_value(criterion, *value)
    return criterion


def build_two_level_query(page: Page) -> dict[str, Any]:
    """Root allOf: a woman, and a nested anyOf group of a CT or an MR; returns the GraphQL
    criterion tree of what was built, at the levels the page gave each criterion."""
    root = page.locator("#criteria")
    root.wait_for()
    assert root.get_attribute("data-op") == "allOf", "the root group starts as allOf"
    existing = root.locator(".criterion")
    if existing.count() == 1 and existing.first.locator("select.criterion-kind").input_value():
        raise AssertionError("the builder should start without a filled criterion")
    if existing.count() == 1:  # an empty starter criterion: use it
        sex = existing.first
        choose(sex.locator("select.criterion-kind"), "sex")
        set_value(sex, "FEMALE", "female")
    else:
        sex = add_criterion(root, ("sex",), ("FEMALE", "female"))
    root.locator(".add-group").first.click()
    nested = root.locator(".group").first
    nested.wait_for()
    choose(nested.locator("select.group-op").first, "anyOf")
    nested.wait_for()
    assert nested.get_attribute("data-op") == "anyOf", "the nested group's operator is anyOf"
    ct = add_criterion(nested, ("modality",), ("CT",))
    mr = add_criterion(nested, ("modality",), ("MR",))
    levels = [c.get_attribute("data-level") for c in (sex, ct, mr)]
    assert levels[0] == "subject", f"sex is a subject criterion, got {levels}"
    assert levels[1] == levels[2] and levels[1] in ("study", "series"), levels

    def modality(code: str) -> dict[str, Any]:
        if levels[1] == "series":
            return {"series": {"modality": [code]}}
        return {"study": {"modalities": [code]}}

    return {
        "allOf": [{"subject": {"sex": ["FEMALE"]}}, {"anyOf": [modality("CT"), modality("MR")]}]
    }


def bars_of(rows: list[dict[str, Any]], key: Any) -> dict[str, tuple[str, str]]:
    """The bars a chart of the API's rows should draw: key → (data-value, data-suppressed) of
    each row's subjects count."""
    return {
        key(row): (
            "" if row["subjects"]["value"] is None else str(row["subjects"]["value"]),
            "true" if row["subjects"]["suppressed"] else "false",
        )
        for row in rows
    }


def chart_bars(page: Page, chart: str, key: str) -> dict[str, tuple[str, str]]:
    """A chart's bars: key attribute → (data-value, data-suppressed)."""
    bars: list[list[str]] = page.locator(f"{chart} g.bar").evaluate_all(
        f"""bars => bars.map(b => [b.getAttribute('data-{key}'),
            b.getAttribute('data-value') ?? '', b.getAttribute('data-suppressed') ?? ''])"""
    )
    return {k: (v, s) for k, v, s in bars}


def sign_in_with_token(page: Page, token: str) -> None:
    """Paste an API token into the header's sign-in area."""
    area = page.locator("#signin")
    field = area.locator("input:not([type=hidden]):not([type=checkbox])")
    if not field.first.is_visible():
        area.locator("button, summary, a").first.click()
    field.first.fill(token)
    buttons = area.locator("button").filter(has_text=re.compile("token|sign|save|use|ok", re.I))
    if buttons.count():
        buttons.first.click()
    else:
        field.first.press("Enter")


def unmapped_row(page: Page, key: tuple[str, str, str]) -> Locator:
    """The #unmapped row of (provider, field, value)."""
    attributes = zip(("data-provider", "data-field", "data-value"), key, strict=True)
    selector = "".join(f"[{name}={json.dumps(text)}]" for name, text in attributes)
    return page.locator(f"#unmapped tr{selector}")


def propose_for_row(site: Site, page: Page, index: int) -> tuple[str, str, str]:
    """Propose "no term found" through the API for the index-th #unmapped row's value, reload
    and wait for its approve button; returns the row's (provider, field, value)."""
    row = page.locator("#unmapped tr[data-value]").nth(index)
    provider, field, value = (
        row.get_attribute(a) or "" for a in ("data-provider", "data-field", "data-value")
    )
    variables = {"provider": provider, "field": field, "value": value, "object": NO_TERM_FOUND}
    site.graphql(PROPOSE, variables)
    page.reload()
    key = (provider, field, value)
    unmapped_row(page, key).locator("button.approve").first.wait_for()
    return key
