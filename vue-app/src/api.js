// Every call the page makes, in one place. Each resolves to {ok, status, body}.

/**
 * @typedef {{zh: string, en: string}} Message
 * @typedef {{error?: string, message?: Message, fields?: Record<string, Message>}} ErrorBody
 * @typedef {{number: string, token: string, status: string, status_url: string}} Submitted
 * @typedef {{number: string, status: string, product: string, product_names: Message|null,
 *   company: string, quantity: number, validity: string,
 *   timeline: {status: string, at: string}[]}} Status
 */

const OFFLINE = { error: "offline", message: { zh: "网络连接失败，请稍后再试。", en: "Cannot reach the server; try again in a minute." } };

async function call(url, options = {}) {
  try {
    const response = await fetch(url, { headers: { Accept: "application/json" }, ...options });
    const body = await response.json().catch(() => ({}));
    return { ok: response.ok, status: response.status, body };
  } catch {
    return { ok: false, status: 0, body: OFFLINE };
  }
}

/** The public catalogue: {products: {code: {name, quantities, validities, ...}}}. */
export const getCatalogue = () => call("/catalogue.json");

/**
 * Sends one attempt of a submission to `url`; every attempt of the same submission carries the
 * same `key`, so the server takes it once however often it arrives.
 * @returns {Promise<{ok: boolean, status: number, body: Submitted | ErrorBody}>}
 */
const submit = (url, form, key) =>
  call(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json", "Idempotency-Key": key },
    body: JSON.stringify(form),
  });

/** An application, which waits for approval. */
export const submitApplication = (form, key) => submit("/api/applications", form, key);

/** A redemption: the form and an activation code (`form.code`), whose batch sets the terms. */
export const redeemCode = (form, key) => submit("/api/redemptions", form, key);

/** A new idempotency key: one per submission. */
export function newSubmissionKey() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  // randomUUID exists only in secure contexts; a page opened over plain http still has this.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Statuses after which a submission may or may not have been stored: retry it with its key. */
export const OUTCOME_UNKNOWN = new Set([0, 503, 504]);

/** @returns {Promise<{ok: boolean, status: number, body: Status | ErrorBody}>} */
export const getStatus = (token) => call(`/api/applications/${encodeURIComponent(token)}`);
