// The GraphQL client: fetch() to the public API, with the signed-in user's bearer token.

import { forgetToken, token } from "./auth.js";
import { t } from "./ui.js";

export class ApiError extends Error {
  constructor(message, codes) {
    super(message);
    this.codes = codes;
  }
  get needsSignIn() {
    return this.codes.some((c) => c === "UNAUTHENTICATED" || c === "FORBIDDEN");
  }
}

export async function gql(query, variables = {}) {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  const bearer = token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const response = await fetch("/graphql", {
    method: "POST",
    headers,
    body: JSON.stringify({ query, variables }),
  });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`HTTP ${response.status}`, [String(response.status)]);
  }
  if (body.errors && body.errors.length) {
    const codes = body.errors.map((e) => (e.extensions && e.extensions.code) || "");
    if (bearer && codes.includes("UNAUTHENTICATED")) {
      forgetToken(); // a stale or wrong token: the next request is anonymous
      throw new ApiError(t("token_invalid"), codes);
    }
    throw new ApiError(body.errors.map((e) => e.message).join("; "), codes);
  }
  if (!response.ok) throw new ApiError(`HTTP ${response.status}`, [String(response.status)]);
  return body.data;
}
