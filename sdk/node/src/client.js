// A PocketBase client acting as the caller of a request.

import PocketBase, { BaseAuthStore, getTokenPayload } from "pocketbase";
import { getUser } from "./user.js";

const SUPERUSERS = "_superusers";

function baseURL(url) {
  const value = url ?? process.env.PB_URL;
  if (!value) {
    throw new Error(
      "pocketbaseFor: PB_URL is not set. PocketBase sets it for the processes it starts; " +
        "outside PocketBase set PB_URL=http://127.0.0.1:8090 (your PocketBase's address) or pass { url }",
    );
  }
  return value;
}

/**
 * A PocketBase client (the official `pocketbase` SDK) that calls PocketBase
 * as the caller of a request, under PocketBase's API rules: its auth store
 * holds the token the caller sent. Give it the request (node `req`, Express
 * `req`, the fetch `Request`, Hono `c.req.raw`) or a user from getUser().
 *
 * For a guest (and for a gateway call signed as the system, which carries
 * no token) the client is a guest too.
 *
 * The client's auth record holds only `id` and `collectionName`; call
 * `pb.collection(name).authRefresh()` for the full record.
 */
export function pocketbaseFor(userOrRequest, { url } = {}) {
  const user = isUser(userOrRequest) ? userOrRequest : getUser(userOrRequest);
  const pb = new PocketBase(baseURL(url), new BaseAuthStore());
  // A server makes concurrent calls of the same kind; the browser-oriented
  // default would cancel all but the last of them.
  pb.autoCancellation(false);
  if (user.token) {
    pb.authStore.save(user.token, { id: user.id, collectionName: user.collection, collectionId: "" });
  }
  return pb;
}

function isUser(value) {
  return (
    value !== null &&
    typeof value === "object" &&
    typeof value.id === "string" &&
    typeof value.collection === "string" &&
    typeof value.superuser === "boolean"
  );
}

/**
 * The caller of a token, as PocketBase itself confirms it (auth-refresh), or
 * null when PocketBase refuses the token. For development without the
 * gateway (`devAuth: "pocketbase"`).
 */
export async function userFromToken(token, { url } = {}) {
  if (!token) return null;
  const { collectionId } = getTokenPayload(token);
  if (typeof collectionId !== "string" || collectionId === "") return null;
  const pb = new PocketBase(baseURL(url), new BaseAuthStore());
  pb.autoCancellation(false);
  pb.authStore.save(token);
  try {
    const { record } = await pb.collection(collectionId).authRefresh({ requestKey: null });
    return {
      id: record.id,
      collection: record.collectionName,
      superuser: record.collectionName === SUPERUSERS,
      token,
    };
  } catch (err) {
    if (err?.status === 401 || err?.status === 403 || err?.status === 404) return null;
    throw err;
  }
}
