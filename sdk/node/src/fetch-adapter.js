// Runs a fetch-style handler (`(Request) => Response`, such as Hono's
// `app.fetch`) on node:http, streaming both ways without buffering.

import { Readable } from "node:stream";

/** A `Request` for an incoming node request; `signal` aborts when the client goes away. */
export function toRequest(req, signal) {
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    // HTTP/2 pseudo-headers (":path") are not valid fetch header names.
    if (raw[i].startsWith(":")) continue;
    try {
      headers.append(raw[i], raw[i + 1]);
    } catch {
      // A value fetch refuses (not a ByteString) is left out, not fatal.
    }
  }
  const init = { method: req.method, headers, signal };
  if (req.method !== "GET" && req.method !== "HEAD") {
    init.body = Readable.toWeb(req);
    init.duplex = "half";
  }
  return new Request(requestURL(req), init);
}

function requestURL(req) {
  let origin = "http://localhost";
  const host = req.headers.host;
  if (host) {
    try {
      origin = new URL(`http://${host}`).origin;
    } catch {
      // A malformed Host header keeps the placeholder origin.
    }
  }
  const target = req.url ?? "/";
  // Concatenated, not resolved: "//evil.example/x" is a path here, not a host.
  if (target.startsWith("/")) return origin + target;
  try {
    return new URL(target).href; // absolute-form request target
  } catch {
    return origin + "/";
  }
}

/**
 * Writes a `Response` to a node response, chunk by chunk as the body
 * produces them, honouring back-pressure. When the client goes away the
 * body is cancelled, so whatever produces it can stop.
 */
export async function writeResponse(response, req, res) {
  res.statusCode = response.status;
  if (response.statusText) res.statusMessage = response.statusText;
  for (const [name, value] of response.headers) {
    if (name === "set-cookie") continue;
    res.setHeader(name, value);
  }
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) res.setHeader("set-cookie", cookies);

  // The client left while the handler was still working: nothing to send.
  if (res.destroyed) {
    if (response.body !== null) await response.body.cancel().catch(() => {});
    return;
  }
  if (response.body === null || req.method === "HEAD") {
    if (response.body !== null) await response.body.cancel().catch(() => {});
    res.end();
    return;
  }
  // A stream's headers go out at once, before its first chunk.
  if (!response.headers.has("content-length")) res.flushHeaders();

  const reader = response.body.getReader();
  let clientGone = false;
  const onClose = () => {
    if (res.writableFinished) return;
    clientGone = true;
    reader.cancel().catch(() => {});
  };
  res.on("close", onClose);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || clientGone) break;
      if (!res.write(value)) await drained(res);
    }
    if (!clientGone) res.end();
  } catch (err) {
    // The body failed after the status went out: all that is left is to
    // cut the connection, so the client sees an incomplete answer.
    if (!clientGone) res.destroy(err instanceof Error ? err : new Error(String(err)));
  } finally {
    res.off("close", onClose);
  }
}

function drained(res) {
  return new Promise((resolve) => {
    if (res.destroyed) {
      resolve();
      return;
    }
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}
