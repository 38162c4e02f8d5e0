// Regenerates docs/SCHEMA.md from the compiled migrations (run `npm run build` first).
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { renderSchemaDoc } from "../dist/src/store/schema-doc.js";

const target = fileURLToPath(new URL("../docs/SCHEMA.md", import.meta.url));
writeFileSync(target, renderSchemaDoc());
console.log(`wrote ${target}`);
