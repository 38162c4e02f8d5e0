// The one test command (`npm test` runs it after the build): the Python suite with the
// project venv's pytest (and its Procgen tests in .venv-procgen where that exists), then
// the compiled TypeScript tests with node:test. All always run; the exit code is non-zero
// if any failed; their summaries are printed at the end.
import { spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const python = process.env.AMAGO2_PYTHON || path.join(root, ".venv", "bin", "python");

/** Run a command with its output streamed through; resolve with its exit code and output tail. */
function run(cmd, args) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let tail = "";
    const keep = (chunk, sink) => {
      sink.write(chunk);
      tail = (tail + chunk.toString()).slice(-20_000);
    };
    child.stdout.on("data", (c) => keep(c, process.stdout));
    child.stderr.on("data", (c) => keep(c, process.stderr));
    child.on("error", (err) => resolve({ code: 127, tail: String(err) }));
    child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), tail }));
  });
}

const results = [];

/** pytest's last summary line ("153 passed, 21 skipped in ..."). */
function pytestSummary(tail) {
  const line = tail.split("\n").reverse().find((l) => /\b(passed|failed|error|no tests ran)\b/.test(l)) ?? "(no summary)";
  return line.replace(/=/g, "").trim();
}

if (!existsSync(python)) {
  results.push({ name: "python (pytest)", code: 1, summary: `no interpreter at ${python}: run \`node bin/amago2.js setup\` or .ci/run` });
} else {
  const py = await run(python, ["-m", "pytest", "python/tests", "-q", "-p", "no:cacheprovider"]);
  results.push({ name: "python (pytest)", code: py.code, summary: pytestSummary(py.tail) });
}

// Procgen's trials need its own runtime (numpy<2, the old gym): where `amago2 setup
// --procgen` made one, the tests marked `procgen` run in it too.
const procgenPython = path.join(root, ".venv-procgen", "bin", "python");
if (existsSync(procgenPython)) {
  const probe = await run(procgenPython, ["-c", "import importlib.util, sys; sys.exit(importlib.util.find_spec('pytest') is None)"]);
  if (probe.code !== 0) {
    results.push({ name: "procgen (pytest)", code: 0, skipped: true,
      summary: "skipped: .venv-procgen has no pytest (made before its lock held it); `node bin/amago2.js setup --procgen` brings it to the lock" });
  } else {
    const pg = await run(procgenPython, ["-m", "pytest", "python/tests", "-m", "procgen", "-q", "-p", "no:cacheprovider"]);
    results.push({ name: "procgen (pytest)", code: pg.code, summary: pytestSummary(pg.tail) });
  }
}

const testDir = path.join(root, "dist", "tests");
const files = existsSync(testDir) ? readdirSync(testDir).filter((f) => f.endsWith(".test.js")).sort().map((f) => path.join(testDir, f)) : [];
if (files.length === 0) {
  results.push({ name: "typescript (node:test)", code: 1, summary: "no compiled tests in dist/tests: run `npm run build`" });
} else {
  const ts = await run(process.execPath, ["--test", "--test-reporter=spec", ...files]);
  const counts = [...ts.tail.matchAll(/^\S* ?(tests|pass|fail|cancelled|skipped|duration_ms) ([\d.]+)$/gm)].map((m) => `${m[1]} ${m[2]}`);
  results.push({ name: "typescript (node:test)", code: ts.code, summary: counts.join(", ") || "(no summary)" });
}

process.stdout.write("\n== test summary ==\n");
for (const r of results) process.stdout.write(`${r.skipped ? "SKIP" : r.code === 0 ? "PASS" : "FAIL"}  ${r.name}: ${r.summary}\n`);
process.exit(results.every((r) => r.code === 0) ? 0 : 1);
