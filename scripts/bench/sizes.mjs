#!/usr/bin/env node
// What crosses the network: raw, gzip (level 9) and brotli (quality 11) bytes of every file the
// npm package ships that is larger than 64 KiB, the other weights variants, and `npm pack`'s
// packed and unpacked sizes. Prints a Markdown table and writes bench-results/sizes.json.
// Run after scripts/build.sh (pkg/ must exist).
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { ROOT } from "../lib/pages.mjs";

const pack = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: ROOT, encoding: "utf8" }))[0];
const shipped = new Set(pack.files.map((f) => f.path));
const candidates = [
  ...pack.files.filter((f) => f.size > 65536).map((f) => f.path),
  ...readdirSync(join(ROOT, "models"))
    .filter((n) => n.endsWith(".safetensors"))
    .map((n) => `models/${n}`),
];
const files = {};
for (const path of [...new Set(candidates)].sort()) {
  const bytes = readFileSync(join(ROOT, path));
  files[path] = {
    shipped: shipped.has(path),
    raw: bytes.length,
    gzip: gzipSync(bytes, { level: 9 }).length,
    brotli: brotliCompressSync(bytes, {
      params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
    }).length,
  };
}
const result = {
  date: new Date().toISOString().slice(0, 10),
  package: { packed: pack.size, unpacked: pack.unpackedSize, files: pack.entryCount },
  files,
};
writeFileSync(join(ROOT, "bench-results/sizes.json"), `${JSON.stringify(result, null, 2)}\n`);

const mb = (n) => (n / 1e6).toFixed(2);
console.log("| file | in the package | raw MB | gzip MB | brotli MB |\n|---|---|---|---|---|");
for (const [path, f] of Object.entries(files)) {
  console.log(`| \`${path}\` | ${f.shipped ? "yes" : "no"} | ${mb(f.raw)} | ${mb(f.gzip)} | ${mb(f.brotli)} |`);
}
console.log(`\nnpm pack: ${mb(pack.size)} MB packed, ${mb(pack.unpackedSize)} MB unpacked, ${pack.entryCount} files`);
