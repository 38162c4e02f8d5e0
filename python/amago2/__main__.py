"""`python -m amago2 train request.json`: one run without the TypeScript side, for debugging
and for tests that kill a real training process. Every event line is also printed to
stdout; SIGINT or SIGTERM asks for a clean stop (checkpoint first), as under the CLI."""

from __future__ import annotations

import json
import sys

USAGE = "usage: python -m amago2 train REQUEST.json"


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "train":
        print(USAGE, file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as f:
            request_json = f.read()
    except OSError as e:
        print(f"cannot read run request '{argv[1]}' ({e.strerror}); {USAGE}", file=sys.stderr)
        return 2

    from amago2 import bridge

    def emit(line: str) -> bool:
        print(line, flush=True)
        return False

    summary = json.loads(bridge.train(request_json, emit))
    if summary["error"]:
        print(f"{summary['error']['type']}: {summary['error']['message']}", file=sys.stderr)
    if summary["status"] != "failed":
        return 0
    return 2 if summary["error"]["type"] == "ConfigError" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
