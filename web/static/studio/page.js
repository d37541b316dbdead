// What the studio's pages share: the element lookup, the live status line, and JSON POSTs with the CSRF token.

export const $ = (selector) => document.querySelector(selector);

// A function that says `text` in the status line `selector` (a live region) as a status or an error.
export function announcer(selector) {
  return (text, kind = 'status') => {
    const box = $(selector);
    box.textContent = text;
    box.className = `studio-status ${kind}`;
  };
}

// POST `body` as JSON with the page's CSRF token; the answer's JSON (or a problem naming the HTTP status).
export async function postJSON(url, body, csrf) {
  const response = await fetch(url, {
    method: 'POST', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRFToken': csrf, Accept: 'application/json' },
    body: JSON.stringify(body),
  });
  let payload = {};
  try { payload = await response.json(); } catch (e) { payload = { problems: [{ message: `HTTP ${response.status}` }] }; }
  return { ok: response.ok, status: response.status, payload };
}
