#!/usr/bin/env node
// `npx pocketbase ARGS` / `npx processman ARGS`: runs the ready pocketbase
// binary with ARGS, passing signals on and exiting with its status.
import { spawn } from "node:child_process";
import { constants } from "node:os";
import { binaryPath } from "../lib/binary.js";

let path;
try {
  path = binaryPath();
} catch (err) {
  console.error(`processman: ${err.message}`);
  process.exit(1);
}
const child = spawn(path, process.argv.slice(2), { stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => child.kill(signal));
}
child.on("error", (err) => {
  console.error(`processman: cannot run ${path}: ${err.message}`);
  process.exit(1);
});
child.on("exit", (code, signal) => {
  // A child ended by a signal exits as a shell reports it: 128 + signal.
  process.exit(signal ? 128 + (constants.signals[signal] ?? 0) : (code ?? 1));
});
