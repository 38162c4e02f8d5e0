// The layers of src/ import downwards only: cli.ts wires commands; commands sit above
// reporting, execution and planning; the store below them; the Python bridge's types and
// the output helpers below that; package.ts (where the installed package lives) at the
// bottom. A new import that points upwards fails here with the file and the import named.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { REPO_ROOT } from "./helpers.js";

const SRC = path.join(REPO_ROOT, "src");
/** Top to bottom: a file may import from its own layer and from any layer after it. */
const LAYERS = ["cli.ts", "commands", "report", "exec", "plan", "store", "bridge", "ui", "package.ts"];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(path.join(dir, e.name)) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : []);
}

function layerOf(file: string): number {
  const top = path.relative(SRC, file).split(path.sep)[0];
  const rank = LAYERS.indexOf(top);
  assert.ok(rank >= 0, `${path.relative(REPO_ROOT, file)} is in no layer (known: ${LAYERS.join(", ")})`);
  return rank;
}

/** Every relative import in a file's text (static, `import type` and dynamic `import()`), resolved to a .ts path. */
function importsIn(file: string, text: string): string[] {
  const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*)"(\.{1,2}\/[^"]+)"/g)].map((m) => m[1]);
  return specs.map((s) => path.resolve(path.dirname(file), s.replace(/\.js$/, ".ts")));
}

function upwardImports(file: string, text = readFileSync(file, "utf8")): string[] {
  return importsIn(file, text)
    .filter((target) => layerOf(target) < layerOf(file))
    .map((target) => `${path.relative(SRC, file)} imports ${path.relative(SRC, target)}`);
}

test("no module of src/ imports from a layer above its own", () => {
  const files = sourceFiles(SRC);
  assert.ok(files.length > 40 && files.some((f) => f.endsWith(path.join("store", "db.ts"))));
  assert.ok(importsIn(path.join(SRC, "cli.ts"), readFileSync(path.join(SRC, "cli.ts"), "utf8")).length > 5);
  assert.deepEqual(files.flatMap((f) => upwardImports(f)), []);
});

test("an upward import is reported with the file that makes it; sideways and downward ones are not", () => {
  const file = path.join(SRC, "store", "runs.ts");
  const text = 'import type { RunSpec } from "../exec/types.js";\nimport { a } from "./db.js";\n' +
    'const m = await import("../commands/sweep.js");\nimport { b } from "../ui/errors.js";\n';
  assert.deepEqual(upwardImports(file, text), [`store${path.sep}runs.ts imports exec${path.sep}types.ts`,
    `store${path.sep}runs.ts imports commands${path.sep}sweep.ts`]);
});
