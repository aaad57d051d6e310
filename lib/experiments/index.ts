// The experiments the `dpsm-native` command runs, by subcommand. An experiment is one spec folder beside this
// file; adding one is one line here.
import { exp1 } from "./exp1-lm/index.ts";
import { exp2 } from "./exp2-summarization/index.ts";
import type { AnyExperimentSpec } from "./framework/spec.ts";

export const EXPERIMENTS: Readonly<Record<string, AnyExperimentSpec>> = {
  exp1,
  exp2,
};
