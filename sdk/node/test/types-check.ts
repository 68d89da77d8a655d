// Compiled with `tsc --noEmit` by `npm test`: the typings accept the ways
// the README uses the package, and reject misuse (@ts-expect-error).

import http from "node:http";
import express from "express";
import { Hono } from "hono";
import {
  serve,
  getUser,
  currentUser,
  pocketbaseFor,
  verify,
  IdentityError,
  VerifyError,
  signHeaders,
  type User,
  type Sidecar,
  connectReadonly,
  database,
} from "@processman/sidecar";

async function examples(): Promise<void> {
  // node:http handler
  const node: Sidecar = await serve((req: http.IncomingMessage, res: http.ServerResponse) => {
    const user: User = getUser(req);
    res.end(user.id);
  });
  await node.shutdown();

  // Express
  const app = express();
  app.get("/", (req, res) => {
    res.json({ id: getUser(req).id, superuser: getUser(req).superuser });
  });
  await serve(app, { shutdownTimeout: 2000 });

  // Hono
  const hono = new Hono();
  hono.get("/", async (c) => {
    const pb = pocketbaseFor(c.req.raw);
    const list = await pb.collection("notes").getList(1, 10);
    return c.json({ user: getUser(c.req.raw).collection, total: list.totalItems });
  });
  await serve(hono, { devUser: "pocketbase" });
  await serve(hono, { devUser: "members/abc", allowUnsigned: ["/health"] });
  await serve(hono, { devAuth: { id: "abc", collection: "users" } }); // the former name
  const caller: User = currentUser();
  void caller;

  // A bare fetch handler
  await serve(async (request: Request) => Response.json({ id: getUser(request).id }), { type: "fetch", log: false });

  // verify
  try {
    const identity = verify({ "x-pb-gateway-proof": "x", "x-pb-gateway-time": ["1"] }, "GET", "/", "secret", 1);
    const id: string = identity.id;
    void id;
  } catch (err) {
    if (err instanceof IdentityError) {
      const code: "missing" | "bad_proof" | "expired" = err.code;
      void code;
    }
    if (err instanceof VerifyError) {
      const message: string = err.message;
      void message;
    }
  }
  verify(new Headers(), "GET", "/", "s");
  const headers: Record<string, string> = signHeaders({ id: "a", collection: "users" }, "GET", "/", "s");
  void headers;

  // @ts-expect-error: serve needs a handler
  await serve();
  // @ts-expect-error: type is "node" or "fetch"
  await serve(hono, { type: "express" });
  // @ts-expect-error: a user is read-only
  getUser(new Request("http://x")).id = "other";
}

void examples;

async function readDatabase(): Promise<void> {
  const { driver } = database();
  const db = await connectReadonly();
  if (driver === "postgres" && "query" in db) {
    const { rows } = await db.query("SELECT id FROM notes WHERE id = $1", ["n1"]);
    console.log(rows[0]?.id);
    await db.end();
  } else if ("prepare" in db) {
    console.log(db.prepare("SELECT id FROM notes WHERE id = ?").get("n1"));
    db.close();
  }
  // @ts-expect-error the options take a path, not a number
  await connectReadonly({ path: 1 });
}
void readDatabase;
