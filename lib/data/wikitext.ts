// WikiText splits as text: the tokenized release (wiki.{split}.tokens, or pytorch/examples' {split}.txt).
import fs from "node:fs";
import path from "node:path";

export type Split = "train" | "valid" | "test";

/** The file of `split` under a WikiText folder (the folder itself, or its tokens/ subfolder). */
export function wikitextTokensFile(dir: string, split: Split): string {
  const names = [`wiki.${split}.tokens`, `${split}.txt`];
  for (const base of [dir, path.join(dir, "tokens")]) {
    for (const name of names) {
      const p = path.join(base, name);
      if (fs.existsSync(p)) return p;
    }
  }
  throw new Error(`WikiText ${split} split not found under ${dir} (looked for ${names.join(" or ")}, also in tokens/)`);
}

export function readWikiText(dir: string, split: Split): string {
  return fs.readFileSync(wikitextTokensFile(dir, split), "utf8");
}
