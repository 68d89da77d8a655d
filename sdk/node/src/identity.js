// The identity headers of processman's gateway (docs/gateway.md, "Request to
// the sidecar"): the gateway signs who is calling, the sidecar verifies it.

import { createHmac, timingSafeEqual } from "node:crypto";

export const HEADER_AUTH_ID = "x-pb-auth-id";
export const HEADER_AUTH_COLLECTION = "x-pb-auth-collection";
export const HEADER_AUTH_SUPERUSER = "x-pb-auth-superuser";
export const HEADER_GATEWAY_TIME = "x-pb-gateway-time";
export const HEADER_GATEWAY_PROOF = "x-pb-gateway-proof";

const SIGNED_HEADERS = [
  HEADER_AUTH_ID,
  HEADER_AUTH_COLLECTION,
  HEADER_AUTH_SUPERUSER,
  HEADER_GATEWAY_TIME,
  HEADER_GATEWAY_PROOF,
];

/** How far, in seconds and either way, the signing time may be from now. */
export const MAX_SKEW_SECONDS = 60;

const INT64_MAX = 2n ** 63n - 1n;
// The time exactly as the gateway writes it: digits, no sign, no leading zero.
const CANONICAL_TIME = /^(?:0|[1-9][0-9]{0,18})$/;

/** The 401 message of each refusal, the same in both SDKs. */
const MESSAGES = {
  missing: "The request carries no gateway identity proof; call this service through PocketBase.",
  bad_proof: "The request's gateway identity proof is invalid.",
  expired: "The request's gateway identity proof has expired; check that the clocks agree.",
};

/**
 * Why a request's identity was refused; the sidecar answers 401.
 * `code` is "missing" (no proof or time), "bad_proof" or "expired".
 */
export class IdentityError extends Error {
  constructor(code, message = MESSAGES[code]) {
    super(message);
    this.name = "IdentityError";
    this.code = code;
  }
}

/** @deprecated The former name of IdentityError. */
export const VerifyError = IdentityError;

function fail(code) {
  return new IdentityError(code);
}

/** Upper-cases ASCII letters only, as the contract says ("ß" stays "ß"). */
function asciiUpper(text) {
  return text.replace(/[a-z]+/g, (letters) => letters.toUpperCase());
}

/** The canonical string the gateway signs (fields joined by "\n"). */
export function canonicalString(time, method, path, id, collection, superuser) {
  return ["v1", String(time), asciiUpper(method), path, id, collection, superuser].join("\n");
}

/**
 * The proof for a canonical string: lower-case hex HMAC-SHA256 keyed with
 * the bytes of the hex secret itself (not its decoding).
 */
export function sign(secret, canonical) {
  return createHmac("sha256", Buffer.from(secret, "utf8")).update(canonical, "utf8").digest("hex");
}

/**
 * Every value of every header, by lower-case name. Accepts a plain object
 * (values a string, or a list for a header sent more than once), a fetch
 * `Headers`, or a list of [name, value] pairs.
 */
function collectHeaders(headers) {
  const values = new Map();
  const add = (name, value) => {
    if (value === undefined || value === null) return;
    const key = String(name).toLowerCase();
    const list = values.get(key) ?? [];
    if (Array.isArray(value)) list.push(...value.map(String));
    else list.push(String(value));
    values.set(key, list);
  };
  if (headers == null) return values;
  if (typeof headers.entries === "function" && typeof headers.get === "function") {
    for (const [name, value] of headers.entries()) add(name, value);
  } else if (Array.isArray(headers)) {
    for (const [name, value] of headers) add(name, value);
  } else {
    for (const [name, value] of Object.entries(headers)) add(name, value);
  }
  return values;
}

/**
 * Verifies the gateway's identity headers of one request, in the order of
 * docs/gateway.md, and returns the caller `{ id, collection, superuser }`
 * (empty id and collection for a guest), or throws an IdentityError.
 *
 * `method` and `path` (with query) are the request as this sidecar received
 * it; `now` is Unix time in seconds (default: this machine's clock).
 *
 * Node's `req.headers` joins a header sent twice into one value, which then
 * fails the proof anyway; `req.headersDistinct` keeps the values apart, so
 * a repeat is reported as such.
 */
export function verify(headers, method, path, secret, now = Math.floor(Date.now() / 1000)) {
  const values = collectHeaders(headers);
  const first = (name) => values.get(name)?.[0] ?? "";

  const id = first(HEADER_AUTH_ID);
  const collection = first(HEADER_AUTH_COLLECTION);
  const superuser = first(HEADER_AUTH_SUPERUSER);
  const time = first(HEADER_GATEWAY_TIME);
  const proof = first(HEADER_GATEWAY_PROOF);

  // 1. Proof and time are required.
  if (proof === "" || time === "") throw fail("missing");
  // 2. No repeats, a canonical time, a secret to verify with.
  if (SIGNED_HEADERS.some((name) => (values.get(name)?.length ?? 0) > 1)) throw fail("bad_proof");
  if (!CANONICAL_TIME.test(time) || BigInt(time) > INT64_MAX) throw fail("bad_proof");
  if (typeof secret !== "string" || secret === "") throw fail("bad_proof");
  // 3. The proof over the received values verbatim, in constant time.
  const expected = Buffer.from(sign(secret, canonicalString(time, method, path, id, collection, superuser)), "utf8");
  const received = Buffer.from(proof, "utf8");
  if (received.length !== expected.length || !timingSafeEqual(received, expected)) throw fail("bad_proof");
  // 4. A signed superuser flag must still be exactly true or false.
  if (superuser !== "true" && superuser !== "false") throw fail("bad_proof");
  // 5. Within MAX_SKEW_SECONDS of this machine's clock, either way.
  const skew = BigInt(Math.trunc(now)) - BigInt(time);
  if (skew > BigInt(MAX_SKEW_SECONDS) || skew < -BigInt(MAX_SKEW_SECONDS)) throw fail("expired");

  return { id, collection, superuser: superuser === "true" };
}

/**
 * The identity headers a gateway would send for a request: for tests of a
 * sidecar, and for calling one over its socket from another local program
 * that holds the secret.
 */
export function signHeaders(
  { id = "", collection = "", superuser = false },
  method,
  path,
  secret,
  now = Math.floor(Date.now() / 1000),
) {
  const time = String(Math.trunc(now));
  const flag = superuser ? "true" : "false";
  return {
    "X-PB-Auth-Id": id,
    "X-PB-Auth-Collection": collection,
    "X-PB-Auth-Superuser": flag,
    "X-PB-Gateway-Time": time,
    "X-PB-Gateway-Proof": sign(secret, canonicalString(time, method, path, id, collection, flag)),
  };
}
