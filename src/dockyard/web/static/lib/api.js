// Calls to the JSON API, relative to the page's <base> (the app's root, wherever mounted).

export const API = "api/v1";
// Set by the server on <html>: a read-only server offers no changes (and refuses them).
export const readOnly = document.documentElement.dataset.readOnly === "true";
export const enc = encodeURIComponent;
export const queuePath = (queue) => `/queues/${enc(queue)}`;
export const jobPath = (queue, id) => `/queues/${enc(queue)}/jobs/${enc(id)}`;

// GET (or `method`) `path` under the API; `json` is sent as the body. Throws an Error with
// the server's detail and `status` on anything but 2xx.
export async function call(path, { method = "GET", json } = {}) {
  // Writes carry X-Dockyard: the server refuses writes without it (or JSON), which other
  // sites cannot make a browser send.
  const headers = method === "GET" ? {} : { "X-Dockyard": "1" };
  const options = { method, headers, credentials: "same-origin" };
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(json);
  }
  const response = await fetch(`${API}${path}`, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.detail || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return body;
}
