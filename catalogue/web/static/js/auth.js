// Sign-in: the OIDC authorization-code flow with PKCE against the issuer /web/config.json names,
// or a pasted API token; the token is kept in sessionStorage (this tab only).

import { el, t } from "./ui.js";

const KEY = "catalogue.token";
const FLOW = "catalogue.oidc";

export function token() {
  return sessionStorage.getItem(KEY);
}

export function forgetToken() {
  sessionStorage.removeItem(KEY);
}

function setToken(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function randomString() {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

async function discover(issuer) {
  const response = await fetch(`${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`);
  if (!response.ok) throw new Error(`OIDC discovery: HTTP ${response.status}`);
  return response.json();
}

function redirectUri() {
  return `${location.origin}${location.pathname}`;
}

async function startSignIn(issuer) {
  const meta = await discover(issuer.issuer);
  const verifier = randomString();
  const state = randomString();
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  sessionStorage.setItem(FLOW, JSON.stringify({
    verifier, state, issuer: issuer.issuer, clientId: issuer.clientId,
    tokenEndpoint: meta.token_endpoint, back: location.search,
  }));
  const params = new URLSearchParams({
    response_type: "code", client_id: issuer.clientId, redirect_uri: redirectUri(),
    scope: "openid", state, code_challenge: base64url(digest), code_challenge_method: "S256",
  });
  location.assign(`${meta.authorization_endpoint}?${params}`);
}

/** Ends a sign-in the issuer redirected back from (?code=&state=); true when it did. */
async function finishSignIn() {
  const params = new URLSearchParams(location.search);
  const code = params.get("code");
  const flow = JSON.parse(sessionStorage.getItem(FLOW) || "null");
  if (!code || !flow || params.get("state") !== flow.state) return false;
  sessionStorage.removeItem(FLOW);
  const response = await fetch(flow.tokenEndpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code", code, redirect_uri: redirectUri(),
      client_id: flow.clientId, code_verifier: flow.verifier,
    }),
  });
  if (!response.ok) throw new Error(`token endpoint: HTTP ${response.status}`);
  const answer = await response.json();
  setToken(answer.access_token);
  history.replaceState(null, "", `${location.pathname}${flow.back || ""}`);
  return true;
}

function render(box, config) {
  box.replaceChildren();
  if (config.authDisabled) {
    box.append(el("span", { class: "hint", text: t("signin_disabled") }));
    return;
  }
  if (token()) {
    box.append(
      el("span", { text: t("signed_in") }), " ",
      el("button", {
        type: "button", id: "signout", text: t("signout"),
        onclick: () => { setToken(null); location.reload(); },
      }),
    );
    return;
  }
  for (const issuer of config.issuers) {
    box.append(el("button", {
      type: "button", class: "signin-oidc", text: t("signin"),
      onclick: () => startSignIn(issuer).catch((e) => alert(t("signin_failed", { message: e.message }))),
    }), " ");
  }
  const form = el("form", { class: "token-form", id: "token-form" },
    el("label", { for: "api-token", text: t("signin_token_label") }),
    el("input", { id: "api-token", type: "password", autocomplete: "off", title: t("signin_token_help") }),
    el("button", { type: "submit", text: t("signin_token_save") }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = form.querySelector("input").value.trim();
    if (value) { setToken(value); location.reload(); }
  });
  box.append(form);
}

/** Reads /web/config.json, finishes a pending OIDC sign-in and draws the #signin area. */
export async function initSignIn() {
  const box = document.getElementById("signin");
  let config = { authDisabled: false, issuers: [] };
  try {
    config = await (await fetch("/web/config.json")).json();
    await finishSignIn();
  } catch (error) {
    box.append(el("span", { class: "error", text: t("signin_failed", { message: error.message }) }));
  }
  render(box, config);
  return config;
}
