// The curation page: unmapped values with proposals to approve or reject, harvest runs, and
// a dataset's validation reports. Needs the curator role.

import { gql } from "./api.js";
import { initSignIn } from "./auth.js";
import { APPROVE, PROVIDER_DATASETS, PROVIDERS, REJECT, REPORTS, RUNS, UNMAPPED } from "./queries.js";
import { clearError, countNode, el, showAuthRequired, showError, t } from "./ui.js";

const status = document.getElementById("curation-status");

function fail(error) {
  if (!showAuthRequired(error, "auth_required_curator")) showError(error);
}

async function decide(row, mapping, mutation, key) {
  clearError();
  try {
    const data = await gql(mutation, {
      provider: row.provider, field: row.field, value: row.value, object: mapping.object,
    });
    const change = data.approveMapping || data.rejectMapping;
    status.textContent = t(`curation.${key}`, { n: change.version });
    await loadUnmapped();
  } catch (error) {
    fail(error);
  }
}

function proposals(row) {
  if (!row.proposals.length) return el("span", { class: "hint", text: t("curation.no_proposals") });
  return el("ul", { class: "proposals" }, row.proposals.map((p) => el("li", { "data-object": p.object },
    el("span", { text: `${p.objectLabel || p.object} ` }), el("code", { text: p.object }),
    p.confidence !== null ? el("span", { class: "hint", text: ` ${Math.round(p.confidence * 100)}%` }) : null,
    " ",
    el("button", { type: "button", class: "approve", text: t("curation.approve"),
      "aria-label": `${t("curation.approve")} ${row.value} → ${p.objectLabel || p.object}`,
      onclick: () => decide(row, p, APPROVE, "approved") }),
    " ",
    el("button", { type: "button", class: "reject", text: t("curation.reject"),
      "aria-label": `${t("curation.reject")} ${row.value} → ${p.objectLabel || p.object}`,
      onclick: () => decide(row, p, REJECT, "rejected") }))));
}

async function loadUnmapped() {
  const body = document.querySelector("#unmapped tbody");
  const data = await gql(UNMAPPED);
  body.replaceChildren();
  if (!data.unmappedValues.length) {
    body.append(el("tr", {}, el("td", { colspan: 6, text: t("curation.none_unmapped") })));
  }
  for (const row of data.unmappedValues) {
    body.append(el("tr", { "data-provider": row.provider, "data-field": row.field, "data-value": row.value },
      el("td", { text: row.provider }), el("td", { text: row.field }), el("td", { text: row.value }),
      el("td", { class: "num" }, countNode(row.series)), el("td", { class: "num" }, countNode(row.subjects)),
      el("td", {}, proposals(row))));
  }
}

async function loadRuns() {
  const box = document.getElementById("runs");
  const data = await gql(RUNS);
  box.replaceChildren();
  if (!data.harvestRuns.length) box.append(el("p", { text: t("curation.no_runs") }));
  for (const run of data.harvestRuns) {
    const rows = run.sources.map((s) => el("tr", { "data-provider": s.provider, class: s.ok ? "" : "bad" },
      el("td", { text: s.provider }), el("td", { text: `${s.kind}: ${s.source}` }),
      el("td", { text: s.ok ? t("yes") : s.error || t("no") }),
      el("td", { text: [`${s.listed} ${t("curation.listed")}`, `${s.new} ${t("curation.new")}`,
        `${s.updated} ${t("curation.updated")}`, `${s.unchanged} ${t("curation.unchanged")}`,
        `${s.deleted} ${t("curation.deleted")}`, `${s.rejected} ${t("curation.rejected_count")}`].join(", ") })));
    box.append(el("details", { class: "run", "data-run": run.id },
      el("summary", { text: `${t("curation.run")} ${run.id} · ${run.state} · ${run.started}` }),
      el("table", {}, el("thead", {}, el("tr", {},
        el("th", { scope: "col", text: t("curation.provider") }), el("th", { scope: "col", text: t("curation.sources") }),
        el("th", { scope: "col", text: "OK" }), el("th", { scope: "col", text: "" }))),
      el("tbody", {}, rows))));
  }
}

async function loadDatasets() {
  const provider = document.getElementById("report-provider").value;
  const select = document.getElementById("report-dataset");
  select.replaceChildren();
  if (!provider) return;
  const data = await gql(PROVIDER_DATASETS, { provider });
  for (const { node } of data.datasets.edges) {
    select.append(el("option", { value: node.identifier, text: `${node.title} (${node.identifier})` }));
  }
}

async function showReports(event) {
  event.preventDefault();
  clearError();
  const box = document.getElementById("report-list");
  const provider = document.getElementById("report-provider").value;
  const identifier = document.getElementById("report-dataset").value;
  if (!provider || !identifier) return;
  try {
    const data = await gql(REPORTS, { provider, identifier });
    box.replaceChildren();
    if (!data.validationReports.length) box.append(el("p", { text: t("curation.no_reports") }));
    for (const r of data.validationReports) {
      const verdict = r.conforms ? t("curation.conforms") : t("curation.violations", { n: r.violations });
      box.append(el("article", { class: "report", "data-run": r.runId, "data-conforms": String(r.conforms) },
        el("h3", { text: t("curation.report_heading", { run: r.runId, verdict }) }),
        el("pre", { text: r.report })));
    }
  } catch (error) {
    fail(error);
  }
}

async function loadProviders() {
  const data = await gql(PROVIDERS);
  const select = document.getElementById("report-provider");
  for (const p of data.providers) select.append(el("option", { value: p.id, text: p.name }));
  select.addEventListener("change", () => loadDatasets().catch(fail));
  await loadDatasets();
}

document.getElementById("reports-form").addEventListener("submit", showReports);
await initSignIn();
for (const load of [loadUnmapped, loadRuns, loadProviders]) load().catch(fail);
