#!/usr/bin/env node
// `npx processman ARGS`: the same launcher as `npx pocketbase ARGS`.
import "./pocketbase.js";
