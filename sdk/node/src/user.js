// The caller of each request that serve() accepted, for getUser() and
// currentUser().

import { AsyncLocalStorage } from "node:async_hooks";

const users = new WeakMap();
const current = new AsyncLocalStorage();

/** The identity of a guest: no record, no token. */
export const GUEST = Object.freeze({ id: "", collection: "", superuser: false, token: "" });

export function setUser(request, user) {
  const frozen = Object.freeze({ ...user });
  users.set(request, frozen);
  return frozen;
}

/** Runs fn with user as currentUser() for everything it calls and awaits. */
export function runAs(user, fn) {
  return current.run(user, fn);
}

/**
 * The caller of the request being handled, for code that runs while
 * serve() handles it (tools, helpers, promises started from the handler),
 * without passing the request around. Throws outside a request.
 */
export function currentUser() {
  const user = current.getStore();
  if (user === undefined) {
    throw new Error("currentUser() was called outside a request handled by serve() from @processman/sidecar");
  }
  return user;
}

/**
 * The caller of a request served by serve(): a node `IncomingMessage`
 * (also Express's `req`) or the fetch `Request` given to a fetch handler
 * (Hono: `c.req.raw`). Throws for a request that serve() did not accept.
 */
export function getUser(request) {
  const user = request && typeof request === "object" ? users.get(request) : undefined;
  if (user === undefined) {
    throw new TypeError(
      "getUser: this request did not come through serve() from @processman/sidecar; " +
        "pass the node request (Express: req) or the fetch Request the handler received (Hono: c.req.raw)",
    );
  }
  return user;
}

/** The PocketBase token in an Authorization header ("Bearer " is optional), or "". */
export function tokenFrom(authorization) {
  if (typeof authorization !== "string") return "";
  const value = authorization.trim();
  const match = /^bearer\s+(.*)$/i.exec(value);
  return (match ? match[1] : value).trim();
}
