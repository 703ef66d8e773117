// Prints the gzipped size of the built JavaScript and CSS; exits 1 above the 60 KB budget.
import { readdirSync, readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

const BUDGET = 60 * 1024;
const dir = new URL("../../frontend/static/assets/", import.meta.url);
let total = 0;
for (const name of readdirSync(dir)) {
  if (!/\.(js|css)$/.test(name)) continue;
  const size = gzipSync(readFileSync(new URL(name, dir)), { level: 9 }).length;
  total += size;
  console.log(`${name.padEnd(32)} ${(size / 1024).toFixed(1)} KB gzipped`);
}
console.log(`total ${(total / 1024).toFixed(1)} KB of ${BUDGET / 1024} KB`);
process.exit(total > BUDGET ? 1 : 0);
