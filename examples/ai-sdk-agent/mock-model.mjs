// An offline stand-in for a language model (the AI SDK's MockLanguageModelV3),
// used when no API key is set. It plays a fixed three-step conversation,
// streaming its text a few words at a time:
//   1. a sentence, then a call to saveNote with the user's message;
//   2. a sentence, then a call to listNotes;
//   3. an answer built from the notes the tool returned.

import { simulateReadableStream } from "ai";
import { MockLanguageModelV3 } from "ai/test";

/** Milliseconds between streamed chunks (MOCK_CHUNK_DELAY_MS, default 80). */
const CHUNK_DELAY_MS = Number(process.env.MOCK_CHUNK_DELAY_MS ?? 80);

const usage = (input, output) => ({
  inputTokens: { total: input, noCache: input, cacheRead: 0, cacheWrite: 0 },
  outputTokens: { total: output, text: output, reasoning: 0 },
});

/** Text as stream parts, a word (with its trailing space) per delta. */
function textParts(id, text) {
  const words = text.match(/\S+\s*/g) ?? [];
  return [
    { type: "text-start", id },
    ...words.map((delta) => ({ type: "text-delta", id, delta })),
    { type: "text-end", id },
  ];
}

function lastUserText(prompt) {
  for (let i = prompt.length - 1; i >= 0; i--) {
    const message = prompt[i];
    if (message.role !== "user") continue;
    const text = message.content
      .filter((part) => part.type === "text")
      .map((part) => part.text)
      .join(" ")
      .trim();
    if (text) return text;
  }
  return "";
}

/** The most recent tool result in the prompt, or undefined. */
function lastToolResult(prompt) {
  for (let i = prompt.length - 1; i >= 0; i--) {
    const message = prompt[i];
    if (message.role === "user") return undefined;
    if (message.role !== "tool") continue;
    const results = message.content.filter((part) => part.type === "tool-result");
    if (results.length > 0) return results.at(-1);
  }
  return undefined;
}

function failure(result) {
  const { output } = result;
  if (output.type === "error-text") return output.value;
  if (output.type === "error-json") return JSON.stringify(output.value);
  if (output.type === "execution-denied") return output.reason ?? "denied";
  return undefined;
}

/** The parts of one step, from what the conversation holds so far. */
function nextStep(prompt, callNumber) {
  const result = lastToolResult(prompt);
  const id = `text-${callNumber}`;
  if (result === undefined) {
    const text = lastUserText(prompt) || "(an empty note)";
    return {
      parts: [
        ...textParts(id, "Sure, I will save that as a note in PocketBase for you."),
        { type: "tool-call", toolCallId: `call-${callNumber}`, toolName: "saveNote", input: JSON.stringify({ text }) },
      ],
      finish: "tool-calls",
    };
  }
  const error = failure(result);
  if (error !== undefined) {
    return { parts: textParts(id, `I could not use ${result.toolName}: ${error}`), finish: "stop" };
  }
  if (result.toolName === "saveNote") {
    return {
      parts: [
        ...textParts(id, "Saved. Let me look at your notes."),
        { type: "tool-call", toolCallId: `call-${callNumber}`, toolName: "listNotes", input: JSON.stringify({ limit: 5 }) },
      ],
      finish: "tool-calls",
    };
  }
  const { total = 0, notes = [] } = result.output.value ?? {};
  const latest = notes[0]?.text;
  const answer =
    total === 1
      ? `You now have 1 note: "${latest}".`
      : `You now have ${total} notes; the latest is "${latest}".`;
  return { parts: textParts(id, answer), finish: "stop" };
}

export function createMockModel() {
  let calls = 0;
  return new MockLanguageModelV3({
    provider: "processman-example",
    modelId: "mock-notes-agent",
    doStream: async ({ prompt }) => {
      calls += 1;
      const { parts, finish } = nextStep(prompt, calls);
      return {
        stream: simulateReadableStream({
          initialDelayInMs: CHUNK_DELAY_MS,
          chunkDelayInMs: CHUNK_DELAY_MS,
          chunks: [
            { type: "stream-start", warnings: [] },
            ...parts,
            { type: "finish", finishReason: { unified: finish, raw: finish }, usage: usage(prompt.length * 10, parts.length) },
          ],
        }),
      };
    },
  });
}
