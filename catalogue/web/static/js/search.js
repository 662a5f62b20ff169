// The search page: query box with concept autocomplete, facets with counts, results, paging.
// Its state (q, f=FIELD:value..., after, back=...) lives in the URL.

import { gql } from "./api.js";
import { initSignIn } from "./auth.js";
import { CONCEPTS, SEARCH } from "./queries.js";
import { clearError, el, showError, t } from "./ui.js";

const PAGE_SIZE = 20;
const FILTER_KEYS = {
  PROVIDER: "providers", CANCER_TYPE: "cancerTypes", BODY_PART: "bodyParts",
  MODALITY: "modalities", ACCESS_RIGHTS: "accessRights", LICENSE: "licenses", THEME: "themes",
};
const input = document.getElementById("q");
const listbox = document.getElementById("q-suggestions");

function readState() {
  const params = new URLSearchParams(location.search);
  return {
    q: params.get("q") || "",
    facets: params.getAll("f"),
    after: params.get("after"),
    back: params.getAll("back"),
  };
}

function writeState(state, push = true) {
  const params = new URLSearchParams();
  if (state.q) params.set("q", state.q);
  for (const f of state.facets) params.append("f", f);
  if (state.after) params.set("after", state.after);
  for (const b of state.back) params.append("back", b);
  const url = `${location.pathname}${params.size ? `?${params}` : ""}`;
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}

function filterOf(facets) {
  const filter = {};
  for (const entry of facets) {
    const at = entry.indexOf(":");
    const key = FILTER_KEYS[entry.slice(0, at)];
    if (!key) continue;
    (filter[key] ||= []).push(entry.slice(at + 1));
  }
  return Object.keys(filter).length ? filter : null;
}

function searchWords(q) {
  return q.replace(/["()]/g, " ").split(/\s+/)
    .filter((w) => w && !["OR", "AND", "NOT"].includes(w) && !w.startsWith("-"))
    .map((w) => w.toLowerCase());
}

/** The text with every word starting with a search word in <mark>. */
function highlighted(text, words) {
  const node = document.createDocumentFragment();
  if (!words.length) { node.append(text); return node; }
  const escaped = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const pattern = new RegExp(`\\b(${escaped.join("|")})\\w*`, "giu");
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    node.append(text.slice(last, match.index), el("mark", { text: match[0] }));
    last = match.index + match[0].length;
  }
  node.append(text.slice(last));
  return node;
}

function snippet(description, max = 260) {
  return description.length > max ? `${description.slice(0, max)}…` : description;
}

function renderFacets(facets, state) {
  const box = document.getElementById("facets");
  box.replaceChildren();
  for (const facet of facets) {
    if (!facet.values.length) continue;
    const set = el("fieldset", { "data-facet": facet.field },
      el("legend", { text: t(`search.facet_${facet.field}`) }));
    facet.values.forEach((value, index) => {
      const key = `${facet.field}:${value.value}`;
      const id = `facet-${facet.field}-${index}`;
      const box = el("input", {
        type: "checkbox", id, "data-facet-value": value.value,
        checked: state.facets.includes(key),
      });
      box.addEventListener("change", () => {
        const next = readState();
        next.facets = box.checked ? [...next.facets, key] : next.facets.filter((f) => f !== key);
        next.after = null;
        next.back = [];
        writeState(next);
        run();
      });
      set.append(el("div", { class: "facet-value" }, box,
        el("label", { for: id }, value.label, " ", el("span", { class: "count", text: value.count }))));
    });
    box.append(set);
  }
}

function renderResults(connection, state) {
  const words = searchWords(state.q);
  const list = document.getElementById("results");
  list.replaceChildren();
  for (const { node } of connection.edges) {
    const href = `/datasets/${encodeURIComponent(node.provider.id)}/${encodeURIComponent(node.identifier)}/view`;
    list.append(el("li", {
      class: "result", "data-provider": node.provider.id, "data-identifier": node.identifier,
    },
    el("a", { class: "result-title", href }, highlighted(node.title, words)),
    el("p", { class: "result-meta" }, `${node.provider.name} · ${node.identifier}`,
      node.modalities.length ? ` · ${node.modalities.join(", ")}` : ""),
    el("p", { class: "result-description" }, highlighted(snippet(node.description), words))));
  }
  const n = connection.totalCount;
  document.getElementById("total").textContent =
    n === 0 ? t("search.none") : n === 1 ? t("search.total_one") : t("search.total", { n: n.toLocaleString("en") });
  const next = document.getElementById("next-page");
  next.disabled = !connection.pageInfo.hasNextPage;
  next.dataset.cursor = connection.pageInfo.endCursor || "";
  document.getElementById("prev-page").disabled = !state.after;
}

let generation = 0;

async function run() {
  const state = readState();
  if (document.activeElement !== input) input.value = state.q; // never wipe what is being typed
  const mine = ++generation;
  clearError();
  try {
    const data = await gql(SEARCH, {
      search: state.q || null, filter: filterOf(state.facets), after: state.after, first: PAGE_SIZE,
    });
    if (mine !== generation) return;
    renderFacets(data.datasets.facets, state);
    renderResults(data.datasets, state);
  } catch (error) {
    showError(error);
  }
}

// Autocomplete: a listbox of concepts, arrow keys to move, Enter to pick, Escape to close.
let active = -1;
let timer = null;

function closeSuggestions() {
  listbox.hidden = true;
  listbox.replaceChildren();
  input.setAttribute("aria-expanded", "false");
  input.removeAttribute("aria-activedescendant");
  active = -1;
}

function options() {
  return [...listbox.querySelectorAll('[role="option"]')];
}

function setActive(index) {
  const all = options();
  if (!all.length) return;
  active = (index + all.length) % all.length;
  all.forEach((o, i) => o.setAttribute("aria-selected", String(i === active)));
  input.setAttribute("aria-activedescendant", all[active].id);
}

function pick(option) {
  input.value = `"${option.dataset.label}"`;
  closeSuggestions();
  submit();
}

async function suggest() {
  const text = input.value.trim();
  if (text.length < 2) { closeSuggestions(); return; }
  try {
    const data = await gql(CONCEPTS, { search: text });
    if (input.value.trim() !== text) return;
    listbox.replaceChildren();
    active = -1;
    data.concepts.forEach((concept, index) => {
      const option = el("li", {
        role: "option", id: `q-option-${index}`, "aria-selected": "false",
        "data-curie": concept.curie, "data-label": concept.label,
      }, concept.label,
      concept.matched && concept.matched !== concept.label ? el("span", { class: "hint", text: ` (${concept.matched})` }) : null,
      el("span", { class: "scheme", text: ` ${concept.curie}` }));
      option.addEventListener("mousedown", (event) => { event.preventDefault(); pick(option); });
      listbox.append(option);
    });
    const any = data.concepts.length > 0;
    listbox.hidden = !any;
    input.setAttribute("aria-expanded", String(any));
  } catch {
    closeSuggestions();
  }
}

function submit() {
  const state = readState();
  writeState({ q: input.value.trim(), facets: state.facets, after: null, back: [] });
  run();
}

input.addEventListener("input", () => {
  clearTimeout(timer);
  timer = setTimeout(suggest, 150);
});
input.addEventListener("keydown", (event) => {
  const open = !listbox.hidden;
  if (event.key === "ArrowDown" && open) { event.preventDefault(); setActive(active + 1); }
  else if (event.key === "ArrowUp" && open) { event.preventDefault(); setActive(active - 1); }
  else if (event.key === "Escape" && open) { event.preventDefault(); closeSuggestions(); }
  else if (event.key === "Enter" && open && active >= 0) { event.preventDefault(); pick(options()[active]); }
});
input.addEventListener("blur", () => setTimeout(closeSuggestions, 100));
document.getElementById("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  clearTimeout(timer);
  closeSuggestions();
  submit();
});
document.getElementById("next-page").addEventListener("click", (event) => {
  const state = readState();
  const cursor = event.currentTarget.dataset.cursor;
  if (!cursor) return;
  writeState({ ...state, back: state.after ? [...state.back, state.after] : [...state.back, ""], after: cursor });
  run();
});
document.getElementById("prev-page").addEventListener("click", () => {
  const state = readState();
  const back = [...state.back];
  const previous = back.pop() || null;
  writeState({ ...state, back, after: previous });
  run();
});
document.getElementById("clear-filters").addEventListener("click", () => {
  const state = readState();
  writeState({ q: state.q, facets: [], after: null, back: [] });
  run();
});
window.addEventListener("popstate", run);

input.value = readState().q;
await initSignIn();
run();
