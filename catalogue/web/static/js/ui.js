// Small DOM helpers shared by the pages: texts, elements, counts, errors.

const TEXTS = JSON.parse(document.getElementById("texts").textContent);

function split(key) {
  return key.includes(".") ? key.split(".", 2) : ["common", key];
}

export function hasText(key) {
  const [group, name] = split(key);
  return Boolean(TEXTS[group] && name in TEXTS[group]);
}

export function t(key, values = {}) {
  const [group, name] = split(key);
  let text = (TEXTS[group] && TEXTS[group][name]) ?? key;
  for (const [k, v] of Object.entries(values)) text = text.replaceAll(`{${k}}`, String(v));
  return text;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A disclosure-controlled Count as text: its value, or "suppressed". */
export function countText(count) {
  if (!count || count.suppressed || count.value === null) return t("suppressed");
  return Number(count.value).toLocaleString("en");
}

export function countNode(count) {
  if (!count || count.suppressed || count.value === null) {
    return el("span", { class: "suppressed", title: t("suppressed_title"), text: t("suppressed") });
  }
  const rounded = count.precision && count.precision !== "exact";
  return el("span", { title: rounded ? count.precision : null, text: countText(count) });
}

export function showError(error) {
  const box = document.getElementById("error");
  box.textContent = t("error", { message: error.message || String(error) });
  box.hidden = false;
}

export function clearError() {
  const box = document.getElementById("error");
  box.hidden = true;
  box.textContent = "";
  document.getElementById("auth-required").hidden = true;
}

/** Shows the sign-in notice for an API error that asks for it; true when it did. */
export function showAuthRequired(error, key) {
  if (!error || !error.needsSignIn) return false;
  const box = document.getElementById("auth-required");
  box.textContent = t(key);
  box.hidden = false;
  return true;
}
