#!/usr/bin/env python3
"""Regenerate the Python lock files in python/locks/ (the one command for updating them).

    python3 scripts/lock-python.py [--torch VERSION] [--procgen-python python3.11]

For each runtime it builds a throwaway venv, installs the pinned torch and then the amago2
package with pip's own resolver (the newest versions python/pyproject.toml allows), checks
that every benchmark of that runtime builds and steps an environment, and only then writes
what got installed:

- python/locks/main.txt     the main runtime (.venv), test tools included
- python/locks/procgen.txt  the Procgen runtime (.venv-procgen: numpy<2, the old gym)

Each ends with a section for torch and the packages only torch needs, which setup installs
only into a Python without torch: a user's own torch (a CUDA build) is kept.

`amago2 setup` installs exactly these versions (pip --no-deps), so the lock must be
complete: a package that is imported but declared by nobody (gymnasium's MuJoCo module
imports `packaging`) belongs in pyproject.toml's dependencies, and then here.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ROOT / "python" / "locks"
MAIN_BENCHMARKS = ["gym-mini", "ml45", "ml45-mini", "popgym", "popgym-rescaled", "popgym-mini", "babyai", "atari"]
PROCGEN_BENCHMARKS = ["procgen", "procgen-rescaled"]
# The line that starts torch's section of a lock (src/bridge/lock.ts finds it).
TORCH_SECTION = "# torch, and the packages only torch needs:"

# Run inside a throwaway venv: every installed distribution with its version and the
# distributions each one requires, markers and extras evaluated for this interpreter.
GRAPH = r"""
import importlib.metadata as m, json, re, sys
from packaging.requirements import Requirement
def canon(name): return re.sub(r"[-_.]+", "-", name).lower()
roots = json.loads(sys.argv[1])  # {dist: [extras]}
dists = {canon(d.metadata["Name"]): d for d in m.distributions()}
edges, todo, seen = {}, [(d, tuple(e)) for d, e in roots.items()], set()
while todo:
    name, extras = todo.pop()
    if (name, extras) in seen: continue
    seen.add((name, extras))
    for text in dists[name].requires or []:
        req = Requirement(text)
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in ("",) + extras): continue
        child = canon(req.name)
        if child == name: continue  # an extra that names another extra of the same dist
        edges.setdefault(name, set()).add(child)
        todo.append((child, tuple(sorted(req.extras))))
print(json.dumps({"versions": {n: d.version for n, d in dists.items()},
                  "edges": {n: sorted(c) for n, c in edges.items()}}))
"""

CHECK = r"""
import json, sys, amago2.bridge as b
names = json.loads(sys.argv[1])
results = json.loads(b.check_benchmarks(json.dumps({"benchmarks": [{"name": n} for n in names]})))
sys.stdout.write("\n" + json.dumps(dict(zip(names, results))) + "\n")
"""


def run(*cmd: str) -> str:
    shown = " ".join(c if len(c) < 80 else "<script>" for c in cmd)
    print(f"+ {shown}", file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout


def build_runtime(base_python: str, venv: Path, torch: str, extras: list[str], benchmarks: list[str]) -> dict:
    """Install a runtime from nothing into `venv`, check its benchmarks, return its graph."""
    run(base_python, "-m", "venv", str(venv))
    python = str(venv / "bin" / "python")
    pip = (python, "-m", "pip", "install", "--disable-pip-version-check", "--quiet")
    run(*pip, "--upgrade", "pip", "setuptools")
    run(*pip, f"torch=={torch}")
    run(*pip, "-e", f"{ROOT / 'python'}[{','.join(extras)}]")
    checks = json.loads(run(python, "-c", CHECK, json.dumps(benchmarks)).strip().splitlines()[-1])
    failed = {n: c["error"] for n, c in checks.items() if c["state"] != "ok"}
    if failed:
        sys.exit(f"not locking: in the fresh {'+'.join(extras)} runtime these benchmarks do not run: {json.dumps(failed, indent=2)}")
    roots = {"amago2": extras, "pip": [], "setuptools": [], "torch": []}
    return json.loads(run(python, "-c", GRAPH, json.dumps(roots)))


def closure(edges: dict[str, list[str]], roots: list[str], skip: set[str]) -> set[str]:
    found, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in found or name in skip:
            continue
        found.add(name)
        todo.extend(edges.get(name, []))
    return found


def required_by(edges: dict[str, list[str]]) -> dict[str, list[str]]:
    parents: dict[str, list[str]] = {}
    for parent, children in edges.items():
        for child in children:
            parents.setdefault(child, []).append(parent)
    return parents


def pins(graph: dict, names: set[str]) -> list[str]:
    """`name==version  # via ...` lines; a local version label (torch's "+cpu") is dropped,
    since `==2.13.0` matches every build of that version and the build is the machine's."""
    parents = required_by(graph["edges"])
    lines = []
    for name in sorted(names):
        version = graph["versions"][name].split("+")[0]
        # setup installs pip and setuptools itself (the package is built without isolation)
        via = ", ".join(sorted(parents.get(name, [])) + (["amago2 setup"] if name in ("pip", "setuptools") else []))
        lines.append(f"{name}=={version}  # via {via}")
    return lines


def write(path: Path, purpose: str, python: str, graph: dict) -> None:
    """One runtime's lock: its packages, then, after the TORCH_SECTION line, torch and the
    packages only torch needs, which `amago2 setup` skips where a torch is installed already."""
    packages = closure(graph["edges"], ["amago2", "pip", "setuptools"], skip={"torch"}) - {"amago2"}
    torch_only = closure(graph["edges"], ["torch"], skip=packages)
    header = [f"# {line}" for line in purpose.splitlines()] + [
        "# `amago2 setup` installs exactly these versions (pip --no-deps), then the amago2 package.",
        "# The torch section at the end goes only into a Python without torch: a torch already",
        "# there (a CUDA build, say) is kept with what it brought. On Linux x86_64 PyPI's torch is",
        "# a CUDA build, whose nvidia-* packages torch pins itself.",
        f"# Generated by `python3 scripts/lock-python.py` on Python {python} ({platform.system().lower()} "
        f"{platform.machine()});",
        "# to change a version, edit python/pyproject.toml and rerun it.",
    ]
    lines = header + pins(graph, packages) + [TORCH_SECTION] + pins(graph, torch_only)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)} ({len(packages)} packages, torch and {len(torch_only) - 1} more)",
          file=sys.stderr)


def locked_torch() -> str | None:
    """The torch version python/locks/main.txt pins, if it exists."""
    lock = LOCKS / "main.txt"
    found = re.search(r"^torch==(\S+)", lock.read_text(encoding="utf-8"), re.M) if lock.exists() else None
    return found.group(1) if found else None


def python_version(python: str) -> str:
    return run(python, "-c", "import platform; print(platform.python_version())").strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--torch", default=locked_torch(),
                        help="the torch a Python without torch gets (default: the one locked now)")
    parser.add_argument("--procgen-python", default="python3.11",
                        help="a Python 3.11 (procgen2 0.10.7 has wheels for 3.11 only)")
    args = parser.parse_args()
    if args.torch is None:
        parser.error("there is no lock to take torch's version from: give --torch")
    with tempfile.TemporaryDirectory(prefix="amago2-lock-") as tmp:
        main_graph = build_runtime(sys.executable, Path(tmp) / "main", args.torch, ["test"], MAIN_BENCHMARKS)
        # The Procgen runtime holds the test tools too: the suite runs its Procgen trials in it.
        procgen_graph = build_runtime(args.procgen_python, Path(tmp) / "procgen", args.torch, ["procgen", "test"],
                                      PROCGEN_BENCHMARKS)

    LOCKS.mkdir(exist_ok=True)
    write(LOCKS / "main.txt", "The main runtime (.venv), test tools included.", python_version(sys.executable), main_graph)
    write(LOCKS / "procgen.txt", "The Procgen runtime (.venv-procgen, `amago2 setup --procgen`): procgen2 needs numpy<2\n"
          "and the old gym, which the main runtime cannot hold. Test tools included.", python_version(args.procgen_python), procgen_graph)

if __name__ == "__main__":
    main()
