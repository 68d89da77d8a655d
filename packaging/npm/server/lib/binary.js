// Finds the pocketbase binary of this platform: the optional dependency
// @processman/server-<platform>-<arch> that npm installed beside this package.
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);

export const platforms = ["linux-x64", "linux-arm64", "darwin-x64", "darwin-arm64", "win32-x64"];

export function binaryPath() {
  const key = `${process.platform}-${process.arch}`;
  const name = `@processman/server-${key}`;
  if (!platforms.includes(key)) {
    throw new Error(`@processman/server has no binary for ${key}; it ships ${platforms.join(", ")}`);
  }
  let dir;
  try {
    dir = dirname(require.resolve(`${name}/package.json`));
  } catch {
    throw new Error(`${name} is not installed: reinstall @processman/server without --omit=optional (npm installs the package of your platform)`);
  }
  const path = join(dir, "bin", process.platform === "win32" ? "pocketbase.exe" : "pocketbase");
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: reinstall ${name}`);
  }
  return path;
}
