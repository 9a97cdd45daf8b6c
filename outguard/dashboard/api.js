// The API with the token from sessionStorage, and the live stream read with fetch()
// (EventSource cannot send an Authorization header).

const KEY = "outguard.token";

export function token() { return sessionStorage.getItem(KEY) || ""; }
export function setToken(value) { sessionStorage.setItem(KEY, value); }
export function clearToken() { sessionStorage.removeItem(KEY); }

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

export async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// Read /api/events and call onEvent(type, data) for each event; reconnect after a drop.
// onState(true|false) reports the connection. Returns a function that stops it.
export function stream(onEvent, onState) {
  let stopped = false;
  let controller = null;

  async function once() {
    controller = new AbortController();
    const response = await fetch("/api/events", {
      headers: { Authorization: `Bearer ${token()}` }, signal: controller.signal,
    });
    if (!response.ok) throw new ApiError(response.status, null);
    onState(true);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        dispatch(block);
      }
    }
  }

  function dispatch(block) {
    let type = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) type = line.slice(7);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
    }
    if (data.length) {
      try { onEvent(type, JSON.parse(data.join("\n"))); } catch (e) { /* a bad event */ }
    }
  }

  (async () => {
    while (!stopped) {
      try { await once(); } catch (e) { /* dropped: retry */ }
      onState(false);
      if (!stopped) await new Promise((r) => setTimeout(r, 2000));
    }
  })();
  return () => { stopped = true; if (controller) controller.abort(); };
}
