// @processman/sidecar: serve a Node.js sidecar behind processman's
// PocketBase gateway.
//
//   import { serve, getUser, pocketbaseFor } from "@processman/sidecar";
//
//   serve(async (request) => {
//     const pb = pocketbaseFor(request); // acts as the caller
//     const notes = await pb.collection("notes").getFullList();
//     return Response.json({ user: getUser(request).id, notes });
//   });

export { serve, resolveListen, parseDevUser, instance, DEFAULT_SHUTDOWN_TIMEOUT_MS, DEFAULT_DEV_PORT } from "./serve.js";
export { getUser, currentUser, GUEST } from "./user.js";
export { pocketbaseFor, userFromToken } from "./client.js";
export { connectReadonly, database, POSTGRES_PACKAGE, SQLITE_PACKAGE } from "./db.js";
export {
  verify,
  signHeaders,
  canonicalString,
  sign,
  IdentityError,
  VerifyError,
  MAX_SKEW_SECONDS,
  HEADER_AUTH_ID,
  HEADER_AUTH_COLLECTION,
  HEADER_AUTH_SUPERUSER,
  HEADER_GATEWAY_TIME,
  HEADER_GATEWAY_PROOF,
} from "./identity.js";
