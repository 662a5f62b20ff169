// Horizontal bar charts as inline SVG; suppressed cells drawn hatched with a "suppressed" label.

import { t } from "./ui.js";

const NS = "http://www.w3.org/2000/svg";
const ROW = 26;
const LABEL_WIDTH = 180;
const WIDTH = 560;

function svgEl(tag, attrs = {}, text = null) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  return node;
}

function hatch() {
  const defs = svgEl("defs");
  const pattern = svgEl("pattern", {
    id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse",
    patternTransform: "rotate(45)",
  });
  pattern.append(svgEl("rect", { width: 6, height: 6, fill: "#e6e6e6" }));
  pattern.append(svgEl("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#767676", "stroke-width": 2 }));
  defs.append(pattern);
  return defs;
}

function clip(text, max = 26) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * Draws items [{key, label, count}] into svg, one <g class="bar"> each carrying
 * data-<attr>=key, data-value and data-suppressed.
 */
export function barChart(svg, items, attr) {
  svg.replaceChildren();
  if (!items.length) {
    svg.setAttribute("height", ROW);
    svg.append(svgEl("text", { x: 0, y: 17, class: "chart-empty" }, t("feasibility.chart_empty")));
    return;
  }
  const max = Math.max(1, ...items.map((i) => (i.count.suppressed ? 0 : i.count.value || 0)));
  const barSpace = WIDTH - LABEL_WIDTH - 90;
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${items.length * ROW}`);
  svg.setAttribute("height", items.length * ROW);
  svg.append(hatch());
  const summary = [];
  items.forEach((item, index) => {
    const suppressed = Boolean(item.count.suppressed || item.count.value === null);
    const value = suppressed ? "" : String(item.count.value);
    const g = svgEl("g", {
      class: suppressed ? "bar suppressed" : "bar",
      [`data-${attr}`]: item.key,
      "data-value": value,
      "data-suppressed": String(suppressed),
      transform: `translate(0 ${index * ROW})`,
    });
    const width = suppressed ? barSpace * 0.15 : Math.max(2, (item.count.value / max) * barSpace);
    const shown = suppressed ? t("suppressed") : Number(item.count.value).toLocaleString("en");
    g.append(svgEl("title", {}, `${item.label}: ${shown}`));
    g.append(svgEl("text", { x: LABEL_WIDTH - 6, y: 17, "text-anchor": "end", class: "bar-label" }, clip(item.label)));
    g.append(svgEl("rect", {
      x: LABEL_WIDTH, y: 4, height: ROW - 8, width,
      fill: suppressed ? "url(#hatch)" : "#1f5fa8",
    }));
    g.append(svgEl("text", { x: LABEL_WIDTH + width + 6, y: 17, class: "bar-value" }, shown));
    svg.append(g);
    summary.push(`${item.label}: ${shown}`);
  });
  svg.setAttribute("aria-description", summary.join("; "));
}
