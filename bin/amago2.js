#!/usr/bin/env node
// Thin launcher of the compiled CLI (npm run build). The only process.exit: the bridge and
// timers must not keep a finished command alive.
import { main } from "../dist/src/cli.js";

// Output to a pipe whose reader is gone (`amago2 sweep | tee log`, and a Ctrl-C that took
// tee down with it) is dropped: a sweep that is stopping its runs must finish doing so.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err) => {
    if (err.code !== "EPIPE") throw err;
  });
}

process.exit(await main(process.argv));
