// Lint of the front ends (`npm run lint`; tests/test_frontend.py runs it in `make test`):
// eslint's recommended rules for the browser modules esbuild bundles, and for the build
// script and unit tests, which run on node.
import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: ["dist/", "node_modules/"] },
  js.configs.recommended,
  {
    files: ["src/**/*.js"],
    languageOptions: {
      sourceType: "module",
      // WIDGET and VERSION: filled in by build.mjs (esbuild's define) in each widget's loader
      globals: { ...globals.browser, WIDGET: "readonly", VERSION: "readonly" },
    },
  },
  { files: ["build.mjs", "eslint.config.js", "test/**/*.js"], languageOptions: { globals: globals.node } },
];
