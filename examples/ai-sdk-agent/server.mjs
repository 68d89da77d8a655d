// A Vercel AI SDK agent behind PocketBase (processman route /api/ai).
//
//   POST /chat   {"messages": [UIMessage...]} (AI SDK UI's useChat) or {"prompt": "..."}
//                -> a UI message stream (server-sent events)
//   GET  /       what this agent is and who is calling
//
// The agent's tools read and write the `notes` collection as the calling
// user, with the token the caller sent to PocketBase: PocketBase's API
// rules apply to the agent exactly as to the user.
//
// With OPENAI_API_KEY set it uses OpenAI (OPENAI_MODEL, default
// gpt-4o-mini); without it, an offline mock model (mock-model.mjs).

import { getUser, pocketbaseFor, serve } from "@processman/sidecar";
import { convertToModelMessages, stepCountIs, streamText, tool, validateUIMessages } from "ai";
import { z } from "zod";
import { createMockModel } from "./mock-model.mjs";

async function chooseModel() {
  if (process.env.OPENAI_API_KEY) {
    const { openai } = await import("@ai-sdk/openai");
    const modelId = process.env.OPENAI_MODEL || "gpt-4o-mini";
    return { model: openai(modelId), name: `openai:${modelId}` };
  }
  return { model: null, name: "mock (offline; set OPENAI_API_KEY for a real model)" };
}

const { model: realModel, name: modelName } = await chooseModel();

/** The tools of one request, acting as its caller. */
function notesTools(request) {
  const user = getUser(request);
  const pb = pocketbaseFor(request);
  return {
    saveNote: tool({
      description: "Save a note for the user in PocketBase.",
      inputSchema: z.object({ text: z.string().min(1).max(10000).describe("The note's text") }),
      execute: async ({ text }) => {
        const note = await pb.collection("notes").create({ text, owner: user.id, source: "ai-sdk" });
        return { id: note.id, text: note.text, created: note.created };
      },
    }),
    listNotes: tool({
      description: "List the user's most recent notes.",
      inputSchema: z.object({ limit: z.number().int().min(1).max(50).default(10) }),
      execute: async ({ limit }) => {
        const page = await pb.collection("notes").getList(1, limit, { sort: "-created" });
        return {
          total: page.totalItems,
          notes: page.items.map((note) => ({ id: note.id, text: note.text, source: note.source, created: note.created })),
        };
      },
    }),
  };
}

function error(status, message) {
  return Response.json({ status, message, data: {} }, { status });
}

/** The conversation from the request body: useChat's messages, or a single prompt. */
async function uiMessages(request) {
  let body;
  try {
    body = await request.json();
  } catch {
    return { error: error(400, 'Send JSON: {"prompt": "..."} or {"messages": [...]}.') };
  }
  if (typeof body?.prompt === "string" && body.prompt.trim() !== "") {
    return { messages: [{ id: "prompt", role: "user", parts: [{ type: "text", text: body.prompt }] }] };
  }
  if (Array.isArray(body?.messages)) {
    try {
      return { messages: await validateUIMessages({ messages: body.messages }) };
    } catch (err) {
      return { error: error(400, `Invalid messages: ${err.message}`) };
    }
  }
  return { error: error(400, 'Send JSON: {"prompt": "..."} or {"messages": [...]}.') };
}

async function chat(request) {
  const user = getUser(request);
  if (!user.id) return error(401, "Sign in to use the agent: it keeps notes for a PocketBase user.");
  const { messages, error: invalid } = await uiMessages(request);
  if (invalid) return invalid;
  const tools = notesTools(request);
  const result = streamText({
    model: realModel ?? createMockModel(),
    system: "You keep notes for the user in PocketBase. Save what they ask you to remember, and answer from their notes.",
    messages: await convertToModelMessages(messages, { tools }),
    tools,
    stopWhen: stepCountIs(5),
    abortSignal: request.signal, // the caller went away: stop generating
  });
  return result.toUIMessageStreamResponse({
    onError: (err) => (err instanceof Error ? err.message : String(err)),
  });
}

async function handle(request) {
  const { pathname } = new URL(request.url);
  if (pathname === "/chat" && request.method === "POST") return chat(request);
  if (pathname === "/" && request.method === "GET") {
    const user = getUser(request);
    return Response.json({
      agent: "ai-sdk-agent",
      model: modelName,
      user: { id: user.id, collection: user.collection, superuser: user.superuser },
      endpoints: { chat: "POST /chat" },
    });
  }
  return error(404, "Not found: POST /chat or GET /.");
}

// Without the gateway (`node server.mjs`), a caller is whoever PocketBase at PB_URL says their token belongs to.
await serve(handle, { devUser: process.env.PB_URL ? "pocketbase" : "guest" });
