#!/usr/bin/env node
// Thin launcher of the compiled CLI (npm run build). The only process.exit: the bridge and
// timers must not keep a finished command alive.
import { main } from "../dist/src/cli.js";

process.exit(await main(process.argv));
