#!/usr/bin/env node
// The demo's static file server (no dependencies).
// Usage: node scripts/serve.mjs [--port 8080] [--root DIR]
import { arg } from "./lib/args.mjs";
import { ROOT, serve } from "./lib/pages.mjs";

const server = await serve(arg("--root", ROOT), Number(arg("--port", process.env.PORT ?? 8080)));
console.log(`sightline demo: http://localhost:${server.address().port}/www/demo/`);
