"""axe-core (the copy axe-playwright-python ships) on each page: no serious or critical
violation."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from tests.browser import ui
from tests.browser.conftest import Site, Tab, screenshot
from tests.browser.test_pages import WORD, run_feasibility

if TYPE_CHECKING:
    from playwright.sync_api import Page

SERIOUS = {"serious", "critical"}


def serious_violations(page: Page) -> list[str]:
    """axe's serious and critical violations of the page as it is now, one line each with the
    elements concerned."""
    from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]

    results: Any = Axe().run(page, options={"resultTypes": ["violations"]})
    return [
        f"{v['impact']} {v['id']}: {v['help']} at {[n['target'] for n in v['nodes']][:5]}"
        for v in results.response["violations"]
        if v["impact"] in SERIOUS
    ]


def test_search_page(demo: Site, tab: Tab) -> None:
    tab.page.goto(f"{demo.url}/?q={WORD}")
    tab.page.locator("#results li.result").first.wait_for()
    tab.page.locator("#facets input[data-facet-value]").first.wait_for()
    assert serious_violations(tab.page) == []


def test_search_suggestions_by_keyboard(demo: Site, tab: Tab) -> None:
    page = tab.page
    page.goto(f"{demo.url}/")
    page.locator("#results li.result").first.wait_for()
    for _ in range(20):  # the header's links and buttons, then the search box
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "q":
            break
        assert page.evaluate("document.activeElement.tagName") in ("A", "BUTTON"), "tab order"
    assert page.evaluate("document.activeElement.id") == "q", "the search box is reachable by Tab"
    page.keyboard.type("lun", delay=50)
    options = page.locator("#q-suggestions [role=option]")
    options.first.wait_for()
    assert page.locator("#q-suggestions").get_attribute("role") == "listbox"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    second = options.nth(1) if options.count() > 1 else options.first
    ui.expect(second).to_have_attribute("aria-selected", "true")
    assert page.locator("#q").get_attribute("aria-activedescendant") == second.get_attribute("id")
    screenshot(page, "search-suggestions")
    assert serious_violations(page) == []
    label = second.get_attribute("data-label") or second.inner_text()
    page.keyboard.press("Enter")  # picks the suggestion and searches for it
    ui.expect(page.locator("#q")).to_have_value(re.compile(re.escape(label.strip()[:20])))
    page.wait_for_url(re.compile(r"[?&]q="))


def test_dataset_page(demo: Site, tab: Tab) -> None:
    edge = demo.graphql(ui.SEARCH, {"search": WORD, "first": 1})["datasets"]["edges"][0]["node"]
    tab.page.goto(f"{demo.url}/datasets/{edge['provider']['id']}/{edge['identifier']}/view")
    tab.page.locator("h1").filter(has_text=edge["title"]).wait_for()
    assert serious_violations(tab.page) == []


def test_feasibility_page_with_a_result(demo: Site, tab: Tab) -> None:
    run_feasibility(demo, tab)
    assert serious_violations(tab.page) == []


def test_curation_page(secured: Site, tab: Tab) -> None:
    assert secured.token
    tab.page.goto(f"{secured.url}/curation")
    tab.page.get_by_text(re.compile("curator sign-in required", re.I)).first.wait_for()
    assert serious_violations(tab.page) == [], "signed out"
    ui.sign_in_with_token(tab.page, secured.token)
    tab.page.locator("#unmapped tr[data-value]").first.wait_for()
    ui.propose_for_row(secured, tab.page, 1)  # a row with approve and reject buttons
    assert serious_violations(tab.page) == [], "signed in"
