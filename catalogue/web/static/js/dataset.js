// A dataset's page: description, distributions, provider, concepts, summary, validation.

import { gql } from "./api.js";
import { initSignIn } from "./auth.js";
import { DATASET } from "./queries.js";
import { el, showError, t } from "./ui.js";

const article = document.getElementById("dataset");
const provider = article.dataset.provider;
const identifier = article.dataset.identifier;

function link(url, text = url) {
  return el("a", { href: url, text });
}

function fact(list, label, ...value) {
  list.append(el("dt", { text: label }), el("dd", {}, ...value));
}

function size(bytes) {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let n = bytes;
  let unit = 0;
  while (n >= 1000 && unit < units.length - 1) { n /= 1000; unit += 1; }
  return `${n.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

/** A summary number: null means disclosure control suppressed it. */
function summaryValue(value) {
  if (value === null || value === undefined) {
    return el("span", { class: "suppressed", title: t("suppressed_title"), text: t("suppressed") });
  }
  return Number(value).toLocaleString("en");
}

function render(d) {
  document.title = `${d.title} · ${t("site_name")}`;
  document.getElementById("dataset-title").textContent = d.title;
  document.getElementById("description").append(
    ...d.description.split(/\n\s*\n/).map((p) => el("p", { text: p })));
  const facts = document.getElementById("facts");
  if (d.keywords.length) fact(facts, t("dataset.keywords"), d.keywords.join(", "));
  if (d.license) fact(facts, t("dataset.license"), link(d.license));
  if (d.accessRights) fact(facts, t("dataset.access_rights"), d.accessRights);
  if (d.landingPage) fact(facts, t("dataset.landing_page"), link(d.landingPage));
  if (d.doi) fact(facts, "DOI", d.doi);

  const prov = document.getElementById("provider");
  prov.append(el("p", {}, d.provider.homepage ? link(d.provider.homepage, d.provider.name) : d.provider.name,
    el("span", { class: "hint", text: ` (${d.provider.id})` })));
  if (d.publisher && d.publisher.name) prov.append(el("p", {}, `${t("dataset.publisher")}: ${d.publisher.name}`));
  for (const c of d.contactPoints) {
    const how = c.email ? link(`mailto:${c.email}`, c.email) : c.url ? link(c.url) : "";
    prov.append(el("p", {}, `${t("dataset.contact")}: ${c.name || ""} `, how));
  }

  const dists = document.getElementById("distributions");
  if (!d.distributions.length) dists.append(el("li", { text: t("dataset.no_distributions") }));
  for (const x of d.distributions) {
    const item = el("li", { class: "distribution" }, el("strong", { text: x.title || x.mediaType || x.iri || "—" }));
    if (x.description) item.append(el("p", { text: x.description }));
    const meta = el("dl", { class: "facts" });
    if (x.mediaType) fact(meta, t("dataset.media_type"), x.mediaType);
    if (x.byteSize !== null) fact(meta, t("dataset.byte_size"), size(x.byteSize));
    for (const url of x.accessURLs) fact(meta, t("dataset.access_url"), link(url));
    for (const url of x.downloadURLs) fact(meta, t("dataset.download_url"), link(url));
    item.append(meta);
    dists.append(item);
  }

  const concepts = document.getElementById("concepts");
  if (!d.concepts.length) concepts.append(el("li", { text: t("dataset.no_concepts") }));
  for (const c of d.concepts) {
    concepts.append(el("li", { "data-curie": c.curie },
      el("a", { href: `/?q=${encodeURIComponent(`"${c.label}"`)}`, text: c.label }),
      el("span", { class: "scheme", text: ` ${c.curie}` })));
  }

  const summary = document.getElementById("summary");
  const s = d.summary;
  if (!s) {
    summary.replaceWith(el("p", { id: "summary", text: t("dataset.no_summary") }));
  } else {
    fact(summary, t("dataset.individuals"), summaryValue(s.numberOfUniqueIndividuals));
    fact(summary, t("dataset.records"), summaryValue(s.numberOfRecords));
    const ages = s.minTypicalAge === null && s.maxTypicalAge === null
      ? [summaryValue(null)] : [`${s.minTypicalAge ?? "?"}–${s.maxTypicalAge ?? "?"}`];
    fact(summary, t("dataset.age_range"), ...ages);
    fact(summary, t("dataset.modalities"), s.modalities.join(", ") || summaryValue(null));
    fact(summary, t("dataset.body_parts"), s.bodyParts.join(", ") || summaryValue(null));
    fact(summary, t("dataset.manufacturers"), s.manufacturers.join(", ") || summaryValue(null));
  }

  const validation = document.getElementById("validation");
  const v = d.validation;
  if (!v) {
    validation.textContent = t("dataset.not_validated");
    validation.dataset.conforms = "";
  } else {
    validation.dataset.conforms = String(v.conforms);
    validation.className = v.conforms ? "ok" : "bad";
    validation.textContent = v.conforms
      ? t("dataset.conforms") : t("dataset.violations", { n: v.violations, run: v.runId });
    if (v.checkedAt) validation.append(el("span", { class: "hint", text: ` (${t("dataset.checked_at", { when: v.checkedAt })})` }));
  }
}

await initSignIn();
try {
  const data = await gql(DATASET, { provider, identifier });
  if (data.dataset) render(data.dataset);
  else showError(new Error(t("dataset.not_found")));
} catch (error) {
  showError(error);
}
