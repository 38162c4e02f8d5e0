// `amago2 setup` from nothing, through the real CLI and real pip, into a bare venv that
// holds only a torch: the path of a user with their own (CUDA) torch, who runs
// `amago2 setup --python their/python`. The venv's torch is the project venv's own, made
// visible through a .pth file, so that no multi-GB torch is installed again; its metadata
// reads as torch 2.11 (another version than the lock's, which bounds setuptools below 82
// as 2.11 does). The other locked packages come from pip (its cache after the first time).
//
// Then: the runtime is broken on purpose (a locked package removed), and doctor, sweep and
// setup are seen to find it, refuse it and repair it; a complete runtime is left untouched.
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { execa } from "execa";
import { PROJECT_PYTHON } from "../src/bridge/python.js";
import { MAIN_LOCK, readLock, runtimeState } from "../src/bridge/runtime.js";
import { fingerprint, runCli, tempDir, withoutUserPython } from "./helpers.js";

withoutUserPython();

// The top-level entries of site-packages that make up torch and everything it needs,
// transitively, except what the lock's own packages provide (setup installs those).
const TORCH_FILES = `
import importlib.metadata as m, json, re, sys
from packaging.requirements import Requirement
canon = lambda n: re.sub(r"[-_.]+", "-", n).lower()
locked = set(json.loads(sys.argv[1]))
dists = {canon(d.metadata["Name"]): d for d in m.distributions()}
todo, seen, entries = ["torch"], set(), set()
while todo:
    name = todo.pop()
    if name in seen or name in locked or name not in dists: continue
    seen.add(name)
    dist = dists[name]
    entries |= {str(dist.locate_file(f.parts[0])) for f in dist.files or [] if f.parts[0] != ".."}
    todo += [canon(r.name) for r in map(Requirement, dist.requires or []) if not r.marker or r.marker.evaluate({"extra": ""})]
print(json.dumps(sorted(entries)))
`;

/** What the test venv's torch metadata says: a user's CUDA build, not the locked version. */
const OWN_TORCH = "2.11.0+cu130";

let root: { dir: string; cleanup: () => void };
let python: string;

/** A fresh venv `root/name` from the project venv's base Python: its interpreter and site-packages. */
async function makeVenv(name: string, ...options: string[]): Promise<{ python: string; sitePackages: string }> {
  const base = (await execa(PROJECT_PYTHON, ["-c", "import sys; print(sys._base_executable)"])).stdout.trim();
  const venv = path.join(root.dir, name);
  await execa(base, ["-m", "venv", ...options, venv]);
  const lib = path.join(venv, "lib");
  return { python: path.join(venv, "bin", "python"), sitePackages: path.join(lib, readdirSync(lib)[0], "site-packages") };
}

before(async () => {
  root = tempDir("amago2-setup-");
  const made = await makeVenv("venv");
  python = made.python;
  const locked = readLock(MAIN_LOCK).packages.map((p) => p.name);
  const entries = JSON.parse((await execa(PROJECT_PYTHON, ["-c", TORCH_FILES, JSON.stringify(locked)])).stdout) as string[];
  const torchSite = path.join(root.dir, "torch-site");
  mkdirSync(torchSite);
  for (const entry of entries.filter((e) => !/^torch-.*\.dist-info$/.test(path.basename(e)))) {
    symlinkSync(entry, path.join(torchSite, path.basename(entry)));
  }
  const dist = path.join(torchSite, "torch-2.11.0+cu130.dist-info");
  mkdirSync(dist);
  writeFileSync(path.join(dist, "METADATA"), `Metadata-Version: 2.1\nName: torch\nVersion: ${OWN_TORCH}\n` +
    "Requires-Dist: setuptools<82\nRequires-Dist: typing-extensions>=4.10.0\n");
  writeFileSync(path.join(made.sitePackages, "project-torch.pth"), `${torchSite}\n`);
});

after(() => root.cleanup());

async function torchOf(interpreter: string): Promise<{ version: string; file: string }> {
  const out = await execa(interpreter, ["-c", "import json, torch; print(json.dumps({'version': torch.__version__, 'file': torch.__file__}))"]);
  const found = JSON.parse(out.stdout) as { version: string; file: string };
  return { version: found.version, file: realpathSync(found.file) };
}

test("setup installs every locked package next to a torch it keeps, and the suite's tools with them", async () => {
  const tools = async () => (await execa(python, ["-c", "import importlib.metadata as m\nfor d in ('pip', 'setuptools'):\n  try: print(d, m.version(d))\n  except m.PackageNotFoundError: print(d, None)"])).stdout;
  const pipBefore = (await tools()).split("\n")[0];
  const setup = await runCli(["setup", "--python", python], {});
  assert.equal(setup.code, 0, setup.stderr);
  // The user's torch bounds setuptools (<82, as 2.11's does): their pip stays, and setuptools
  // is one that builds amago2 (>= 68) within that bound, not the lock's 84.
  const [pipAfter, setuptools] = (await tools()).split("\n");
  assert.equal(pipAfter, pipBefore);
  const [major] = setuptools.split(" ")[1].split(".").map(Number);
  assert.ok(major >= 68 && major < 82, setuptools);
  const check = await execa(python, ["-m", "pip", "check"], { reject: false });
  assert.equal(check.exitCode, 0, check.stdout);
  assert.match(setup.stderr, /Python runtime ready: .*\(torch [^;]+; \d+ locked packages; 8 benchmarks build\)/);

  const state = await runtimeState(python, readLock(MAIN_LOCK));
  assert.deepEqual(state.differences, []);
  assert.ok(state.ownPackage, "amago2 loads from this checkout");
  assert.deepEqual(await torchOf(python), await torchOf(PROJECT_PYTHON), "the torch it found is the one it kept");
  const pytest = await execa(python, ["-m", "pytest", "--version"], { reject: false });
  assert.equal(pytest.exitCode, 0, "setup installs what the README's test command needs");
});

test("a runtime missing a locked package: doctor names it and the fix, sweep refuses in one line and writes nothing, setup repairs it", async () => {
  await execa(python, ["-m", "pip", "uninstall", "--yes", "--quiet", "packaging"]);

  const doctor = await runCli(["doctor", "--python", python], {});
  assert.equal(doctor.code, 1, doctor.stdout);
  const line = doctor.stdout.split("\n").find((l) => /^FAIL +ml45-mini /.test(l));
  assert.ok(line, doctor.stdout);
  assert.match(line, /ModuleNotFoundError: No module named 'packaging'.*fix: `amago2 setup --python \S+` installs the locked packages/);
  assert.match(doctor.stdout, /^WARN +packages +1 differ from python\/locks\/main\.txt \(packaging missing \(locked [\d.]+\)\)/m);

  const home = tempDir("amago2-setup-home-");
  try {
    const sweep = await runCli(["sweep", "ml45-mini", "--scale", "tiny", "--python", python], { AMAGO2_HOME: home.dir });
    assert.equal(sweep.code, 2, sweep.stderr);
    assert.match(sweep.stderr, /^amago2: benchmark 'ml45-mini' cannot run in \S+ \(ModuleNotFoundError: No module named 'packaging'\); `amago2 setup --python \S+` installs the locked packages\n$/);
    assert.deepEqual(readdirSync(home.dir), [], "nothing recorded");
  } finally {
    home.cleanup();
  }

  const repair = await runCli(["setup", "--python", python], {});
  assert.equal(repair.code, 0, repair.stderr);
  const healthy = await runCli(["doctor", "--python", python], {});
  assert.equal(healthy.code, 0, healthy.stdout);
  assert.doesNotMatch(healthy.stdout, /^FAIL/m);
  assert.match(healthy.stdout, /^OK +ml45-mini +metaworld [\d.]+, mujoco [\d.]+: built and stepped reach-v3/m);
});

test("setup leaves a runtime that holds its lock untouched", async () => {
  const venv = path.join(root.dir, "venv");
  const before = fingerprint(venv);
  const again = await runCli(["setup", "--python", python], {});
  assert.equal(again.code, 0, again.stderr);
  assert.equal(fingerprint(venv), before);
});

test("setup refuses a torch older than amago2's floor in one line and installs nothing", async () => {
  // A venv whose only package reads as torch 2.3.1 (its metadata, which is all setup reads
  // before it would install): 2.3 has no fused AdamW on the CPU.
  const { python: oldPython, sitePackages } = await makeVenv("old-torch-venv", "--without-pip");
  const dist = path.join(sitePackages, "torch-2.3.1.dist-info");
  mkdirSync(dist);
  writeFileSync(path.join(dist, "METADATA"), "Metadata-Version: 2.1\nName: torch\nVersion: 2.3.1+cu121\n");
  const venv = path.join(root.dir, "old-torch-venv");
  const before = fingerprint(venv);

  const setup = await runCli(["setup", "--python", oldPython], {});
  assert.equal(setup.code, 2, setup.stderr);
  assert.equal(setup.stderr, `amago2: ${oldPython}: torch 2.3.1+cu121 is older than 2.4, the oldest amago2 runs on; ` +
    `upgrade it in that interpreter (your CUDA build: pip install "torch>=2.4" from its index) or choose another with --python\n`);
  assert.equal(fingerprint(venv), before, "nothing installed");
});
