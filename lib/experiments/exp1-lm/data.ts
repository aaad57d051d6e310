// Experiment 1's data: the WikiText splits and the out-of-domain sets, fetched when missing and tokenised once
// for all jobs.
import { experimentDataDir } from "../../data/ensure.ts";
import type { OodName } from "../../data/ood.ts";
import type { PackedTokens } from "../../data/pack.ts";
import { prepareLanguageModelData } from "../../data/prepare.ts";
import type { Exp1Config } from "./config.ts";

export interface Exp1Data {
  train: PackedTokens;
  valid: PackedTokens;
  test: PackedTokens;
  ood: Partial<Record<OodName, PackedTokens>>;
}

const count = (n: number) => n.toLocaleString("en-US");

export async function prepareExp1Data(c: Exp1Config, say: (line: string) => void = () => {}): Promise<Exp1Data> {
  // A named WikiText set, or the out-of-domain sets, missing from the data folder are fetched first (said
  // through `say`).
  const sets = [...(typeof c.dataset === "string" ? [c.dataset] : []), ...(c.ood.length > 0 ? ["ood_lm"] : [])];
  const dataDir = await experimentDataDir(c.dataDir, sets, say);
  const common = { source: c.dataset, contextLength: c.contextLength, dataDir };
  const data: Exp1Data = {
    train: await prepareLanguageModelData({ ...common, split: "train" }),
    valid: await prepareLanguageModelData({ ...common, split: "valid" }),
    test: await prepareLanguageModelData({ ...common, split: "test" }),
    ood: {},
  };
  for (const name of c.ood) {
    data.ood[name] = await prepareLanguageModelData({ ...common, source: { ood: name } });
  }
  const dataset = typeof c.dataset === "string" ? c.dataset : c.dataset.dir;
  say(
    `data: ${dataset} train ${count(data.train.totalTokens)} tokens, ` +
      `valid ${count(data.valid.totalTokens)}, test ${count(data.test.totalTokens)}` +
      `${c.ood.length ? `; OOD ${c.ood.map((n) => `${n} ${count(data.ood[n]!.totalTokens)}`).join(", ")}` : ""}`,
  );
  return data;
}
