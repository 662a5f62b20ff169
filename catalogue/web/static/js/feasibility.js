// The feasibility page: a criteria builder (boolean groups of subject, study and series
// criteria), its counts as totals and SVG bar charts, the normalised query and downloads.

import { gql } from "./api.js";
import { initSignIn } from "./auth.js";
import { barChart } from "./charts.js";
import { FEASIBILITY, PROVIDERS } from "./queries.js";
import { clearError, countText, el, hasText, showAuthRequired, showError, t } from "./ui.js";

const KINDS = {
  sex: "subject", age: "subject", diagnosis: "subject",
  modality: "series", body_part: "series", manufacturer: "series", annotation: "series",
  year: "study", study_modalities: "study",
};
const SEXES = ["FEMALE", "MALE", "OTHER", "UNKNOWN"];
const ANNOTATIONS = ["SEG", "RTSTRUCT", "SR"];
const STRATA = ["SEX", "AGE_BAND", "MODALITY"];
let uid = 0;

function nextId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

function labelled(text, input) {
  const id = input.id || nextId("f");
  input.id = id;
  return el("span", { class: "field" }, el("label", { for: id, text }), input);
}

function checks(name, values, labelOf) {
  return el("span", { class: "checks" }, values.map((value) => {
    const id = nextId(name);
    return el("span", {}, el("input", { type: "checkbox", id, value, "data-value": value }),
      el("label", { for: id, text: labelOf(value) }));
  }));
}

function criterionInputs(kind) {
  const number = (key, cls) => labelled(t(`feasibility.${key}`), el("input", { type: "number", class: cls, min: 0 }));
  switch (kind) {
    case "sex": return [checks("sex", SEXES, (s) => t(`feasibility.sex_${s}`))];
    case "age": return [number("age_min", "min"), number("age_max", "max")];
    case "year": return [number("year_min", "min"), number("year_max", "max")];
    case "annotation": return [checks("ann", ANNOTATIONS, (a) => a)];
    default: return [labelled(t("feasibility.values"), el("input", { type: "text", class: "values" }))];
  }
}

function criterion(kind = "modality") {
  const node = el("div", { class: "criterion", "data-level": KINDS[kind], "data-kind": kind });
  const select = el("select", { class: "criterion-kind", id: nextId("kind") },
    Object.keys(KINDS).map((k) => el("option", { value: k, selected: k === kind, text: t(`feasibility.kind_${k}`) })));
  const body = el("span", { class: "criterion-body" }, criterionInputs(kind));
  select.addEventListener("change", () => {
    node.dataset.kind = select.value;
    node.dataset.level = KINDS[select.value];
    body.replaceChildren(...criterionInputs(select.value));
  });
  node.append(labelled(t("feasibility.kind_label"), select), body,
    el("button", { type: "button", class: "remove", text: t("feasibility.remove"), onclick: () => node.remove() }));
  return node;
}

function setupGroup(node, removable) {
  node.classList.add("group");
  node.dataset.op ||= "allOf";
  const select = el("select", { class: "group-op", id: nextId("op") },
    ["allOf", "anyOf", "not"].map((op) => el("option", { value: op, selected: op === node.dataset.op, text: t(`feasibility.op_${op}`) })));
  select.addEventListener("change", () => { node.dataset.op = select.value; });
  const children = el("div", { class: "children" });
  const bar = el("div", { class: "group-bar" }, labelled(t("feasibility.group_op_label"), select),
    el("button", { type: "button", class: "add-criterion", text: t("feasibility.add_criterion"),
      onclick: () => { const c = criterion(); children.append(c); c.querySelector("select").focus(); } }),
    el("button", { type: "button", class: "add-group", text: t("feasibility.add_group"),
      onclick: () => { const g = el("div", { "data-op": "allOf" }); setupGroup(g, true); children.append(g); g.querySelector("select").focus(); } }),
    removable ? el("button", { type: "button", class: "remove", text: t("feasibility.remove"), onclick: () => node.remove() }) : null);
  node.replaceChildren(bar, children);
}

function list(text) {
  return text.split(",").map((v) => v.trim()).filter(Boolean);
}

function int(input) {
  return input && input.value !== "" ? Number.parseInt(input.value, 10) : null;
}

function compact(object) {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== null && !(Array.isArray(v) && !v.length)));
}

/** One criterion as a CriterionInput ({subject}, {study} or {series}); null when empty. */
function criterionQuery(node) {
  const kind = node.dataset.kind;
  const checked = [...node.querySelectorAll("input[type=checkbox]:checked")].map((c) => c.value);
  const values = node.querySelector("input.values") ? list(node.querySelector("input.values").value) : [];
  const min = int(node.querySelector("input.min"));
  const max = int(node.querySelector("input.max"));
  const fields = {
    sex: { sex: checked }, age: { ageMin: min, ageMax: max }, diagnosis: { diagnosis: values },
    modality: { modality: values }, body_part: { bodyPart: values },
    manufacturer: { manufacturer: values }, annotation: { hasAnnotation: checked },
    year: { yearMin: min, yearMax: max }, study_modalities: { modalities: values },
  }[kind];
  const given = compact(fields);
  if (!Object.keys(given).length) return null;
  return { [KINDS[kind]]: given };
}

/** A group as a CriterionInput: allOf / anyOf over its children, or not over their allOf. */
function groupQuery(node) {
  const parts = [];
  for (const child of node.querySelector(":scope > .children").children) {
    const part = child.classList.contains("group") ? groupQuery(child) : criterionQuery(child);
    if (part) parts.push(part);
  }
  const op = node.dataset.op;
  if (op === "not") return parts.length ? { not: parts.length === 1 ? parts[0] : { allOf: parts } } : null;
  return { [op]: parts };
}

function buildQuery() {
  const query = {};
  const providers = [...document.querySelectorAll("#scope-providers input:checked")].map((c) => c.value);
  const scope = compact({
    providers,
    datasets: list(document.getElementById("scope-datasets").value),
    cancerTypes: list(document.getElementById("scope-cancer-types").value),
  });
  if (Object.keys(scope).length) query.datasets = scope;
  const where = groupQuery(document.getElementById("criteria"));
  if (where) query.where = where;
  return query;
}

function setTotal(id, count) {
  const node = document.getElementById(id);
  node.textContent = countText(count);
  node.dataset.suppressed = String(Boolean(count.suppressed));
  node.classList.toggle("suppressed", Boolean(count.suppressed));
}

function stratumLabel(dimension, value) {
  if (value === null) return t("feasibility.unknown");
  if (dimension === "SEX" && hasText(`feasibility.sex_${value}`)) return t(`feasibility.sex_${value}`);
  return value;
}

function renderStrata(strata) {
  const box = document.getElementById("strata");
  box.replaceChildren();
  for (const table of strata) {
    const dimension = table.dimensions.join("_");
    const titleId = nextId("stratum-title");
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.id = `chart-stratum-${dimension}`;
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-labelledby", titleId);
    svg.setAttribute("width", "100%");
    svg.dataset.dimension = dimension;
    box.append(el("figure", { tabindex: "0", role: "region", "aria-labelledby": titleId }, el("figcaption", { id: titleId, text: table.dimensions.map((d) => t(`feasibility.stratum_${d}`)).join(" × ") }), svg));
    barChart(svg, table.cells.map((cell) => ({
      key: cell.values.map((v) => v ?? "").join("|"),
      label: cell.values.map((v, i) => stratumLabel(table.dimensions[i], v)).join(" · "),
      count: cell.subjects,
    })), "stratum");
  }
}

function cell(count) {
  return count.suppressed || count.value === null ? "" : String(count.value);
}

function csvOf(result) {
  const quote = (v) => (/[",\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);
  const rows = [["level", "key", "label", "subjects", "studies", "series", "suppressed"]];
  const add = (level, key, label, r) => rows.push([level, key, label, cell(r.subjects), cell(r.studies ?? {}),
    cell(r.series ?? {}), [r.subjects, r.studies, r.series].some((c) => c && c.suppressed) ? "true" : "false"]);
  add("total", "", "", result);
  for (const p of result.byProvider) add("provider", p.provider.id, p.provider.name, p);
  for (const d of result.byDataset) add("dataset", `${d.dataset.provider.id}/${d.dataset.identifier}`, d.dataset.title, d);
  for (const table of result.strata) {
    for (const c of table.cells) {
      rows.push([`stratum:${table.dimensions.join("+")}`, c.values.map((v) => v ?? "").join("|"), "",
        cell(c.subjects), "", "", String(Boolean(c.subjects.suppressed))]);
    }
  }
  return rows.map((r) => r.map((v) => quote(String(v))).join(",")).join("\n") + "\n";
}

const urls = [];

function offer(id, body, type) {
  const link = document.getElementById(id);
  const url = URL.createObjectURL(new Blob([body], { type }));
  urls.push(url);
  link.href = url;
  link.removeAttribute("aria-disabled");
}

function render(query, result) {
  document.getElementById("no-results").hidden = true;
  setTotal("total-subjects", result.subjects);
  setTotal("total-studies", result.studies);
  setTotal("total-series", result.series);
  barChart(document.getElementById("chart-providers"), result.byProvider.map((p) => ({
    key: p.provider.id, label: p.provider.name, count: p.subjects,
  })), "provider");
  barChart(document.getElementById("chart-datasets"), result.byDataset.map((d) => ({
    key: d.dataset.identifier, label: d.dataset.title, count: d.subjects,
  })), "dataset");
  renderStrata(result.strata);
  const explanation = result.explanation || {};
  document.getElementById("disclosure-note").textContent = explanation.disclosure
    ? t("feasibility.disclosure_note", { rules: explanation.disclosure }) : "";
  document.getElementById("normalised-query").textContent = JSON.stringify(explanation.normalisedQuery ?? query, null, 2);
  while (urls.length) URL.revokeObjectURL(urls.pop());
  offer("download-json", JSON.stringify({ query, result }, null, 2), "application/json");
  offer("download-csv", csvOf(result), "text/csv");
}

async function runQuery(event) {
  event.preventDefault();
  clearError();
  const query = buildQuery();
  const button = document.getElementById("run-feasibility");
  button.disabled = true;
  try {
    const data = await gql(FEASIBILITY, { query, strata: STRATA.map((s) => [s]) });
    render(query, data.feasibility);
  } catch (error) {
    if (!showAuthRequired(error, "auth_required_researcher")) showError(error);
  } finally {
    button.disabled = false;
  }
}

async function loadProviders() {
  const box = document.getElementById("scope-providers");
  try {
    const data = await gql(PROVIDERS);
    for (const p of data.providers) {
      const id = `scope-provider-${p.id}`;
      box.append(el("span", {}, el("input", { type: "checkbox", id, value: p.id }),
        el("label", { for: id, text: p.name })));
    }
  } catch (error) {
    showError(error);
  }
}

setupGroup(document.getElementById("criteria"), false);
document.getElementById("feasibility-form").addEventListener("submit", runQuery);
for (const id of ["download-json", "download-csv"]) {
  document.getElementById(id).addEventListener("click", (event) => {
    if (event.currentTarget.getAttribute("aria-disabled") === "true") event.preventDefault();
  });
}
await initSignIn();
loadProviders();
