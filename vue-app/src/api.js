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

/** @returns {Promise<{ok: boolean, status: number, body: Submitted | ErrorBody}>} */
export const submitApplication = (form) =>
  call("/api/applications", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(form),
  });

/** @returns {Promise<{ok: boolean, status: number, body: Status | ErrorBody}>} */
export const getStatus = (token) => call(`/api/applications/${encodeURIComponent(token)}`);
