// ESLint's and typescript-eslint's recommended rules. Without type information: linting stays fast and needs no
// tsconfig, and `npm run typecheck` already runs the compiler in strict mode. Layout is Prettier's, not ESLint's.
import { fileURLToPath } from "node:url";

import js from "@eslint/js";
import { defineConfig, includeIgnoreFile } from "eslint/config";
import globals from "globals";
import tseslint from "typescript-eslint";

export default defineConfig([
  includeIgnoreFile(fileURLToPath(new URL(".gitignore", import.meta.url))),
  js.configs.recommended,
  tseslint.configs.recommended,
  { languageOptions: { globals: globals.node } },
  {
    rules: {
      // `const { key: _, ...rest } = o` is how the code drops a key from an object.
      "@typescript-eslint/no-unused-vars": ["error", { ignoreRestSiblings: true }],
    },
  },
]);
