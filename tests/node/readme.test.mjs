// The README's web-app example type-checks against the published types under TypeScript strict.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ROOT } from "../../scripts/lib/pages.mjs";

/** The code blocks of README.md marked with `<!-- typechecked -->` on the line before the fence. */
function markedBlocks() {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  return [...readme.matchAll(/<!-- typechecked -->\n```js\n([\s\S]*?)```/g)].map((m) => m[1]);
}

test("README examples type-check under strict", () => {
  const blocks = markedBlocks();
  assert.ok(blocks.length >= 1, "the README marks its example with <!-- typechecked -->");
  const dir = mkdtempSync(join(tmpdir(), "sightline-readme-"));
  const files = blocks.map((code, i) => {
    const file = join(dir, `example${i}.js`);
    writeFileSync(file, `// @ts-check\n${code}\nexport {};\n`);
    return file;
  });
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        checkJs: true,
        allowJs: true,
        noEmit: true,
        target: "es2022",
        module: "esnext",
        moduleResolution: "bundler",
        lib: ["es2022", "dom", "dom.iterable"],
        paths: { sightline: [join(ROOT, "www/lib/sightline.d.ts")] },
        skipLibCheck: false,
      },
      files,
    }),
  );
  try {
    execFileSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", dir], { encoding: "utf8" });
  } catch (e) {
    assert.fail(`tsc --strict found errors in the README example:\n${e.stdout}${e.stderr}`);
  }
});
