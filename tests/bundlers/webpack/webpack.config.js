// Only the entry and the output: whatever webpack 5 does by default with the package.
import { fileURLToPath } from "node:url";

export default {
  mode: "production",
  entry: "./main.js",
  output: { path: fileURLToPath(new URL("./dist", import.meta.url)), clean: true },
};
