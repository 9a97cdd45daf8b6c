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

// Heavy requests (reports, listings, imports) run one at a time per tab: the server runs
// one per token and queues a few more (outguard/api/core.py Limits), so a page never
// fires dozens at once and never meets a 429 from its own requests.
let heavyChain = Promise.resolve();

export function heavy(method, path, body) {
  const run = heavyChain.then(() => api(method, path, body));
  heavyChain = run.catch(() => null);
  return run;
}

/** POST a file as the request body with upload progress (fetch cannot report it):
 * onProgress(sent, total). Resolves with the JSON answer, rejects with ApiError. */
export function upload(path, file, onProgress) {
  const run = heavyChain.then(() => new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.setRequestHeader("Authorization", `Bearer ${token()}`);
    xhr.setRequestHeader("Content-Type", "text/plain");
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.upload.onload = () => onProgress(file.size, file.size, true);
    xhr.onload = () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(new ApiError(xhr.status, data));
    };
    xhr.onerror = () => reject(new ApiError(0, { message: "network error" }));
    xhr.send(file);
  }));
  heavyChain = run.catch(() => null);
  return run;
}

export async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  const init = { method, headers };
  if (typeof body === "string") {
    headers["Content-Type"] = "text/plain; charset=utf-8";
    init.body = body;
  } else if (body !== undefined) {
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
