// The Trainer's run settings inside an experiment's settings. An experiment's schema spreads the Trainer's own
// TrainerSettingsSchema (lib/trainer-options.ts) instead of restating it; its jobs hand those settings to their
// Trainer through trainerSettings, which takes every key of that schema, so a new Trainer option reaches the
// command line and every job of every experiment with no edit here or there.
import { shareGlobalBatch } from "../../distributed.ts";
import { type TrainerSettings, TrainerSettingsSchema } from "../../trainer-options.ts";

type SettingKey = keyof TrainerSettings;

/**
 * The settings of the machine an experiment runs on (its device, precision and threads): a block of Trainer
 * settings nested in an experiment's (e.g. a pretraining phase's) leaves them out and takes the experiment's.
 */
export const MACHINE_SETTINGS = { device: true, precision: true, threads: true } as const;

/** The names of the Trainer's run settings, as its schema states them. */
export const TRAINER_SETTING_KEYS = Object.keys(TrainerSettingsSchema.shape) as SettingKey[];

/**
 * The Trainer settings among `settings` (an experiment's resolved settings, or a block of them that nests the
 * Trainer's schema): every key of TrainerSettingsSchema it holds a value for, for one of `worldSize` ranks. An
 * experiment's batch is global, so batchSize and gradAccumulation are shared among the ranks (lib/distributed.ts).
 */
export function trainerSettings<C extends { [K in SettingKey]?: unknown }>(
  settings: C,
  worldSize = 1,
): Pick<C, Extract<keyof C, SettingKey>> {
  const picked: Record<string, unknown> = {};
  for (const key of TRAINER_SETTING_KEYS) if (settings[key] !== undefined) picked[key] = settings[key];
  const { batchSize, gradAccumulation = 1 } = settings;
  if (typeof batchSize === "number" && typeof gradAccumulation === "number") {
    Object.assign(picked, shareGlobalBatch(batchSize, gradAccumulation, worldSize));
  }
  return picked as Pick<C, Extract<keyof C, SettingKey>>;
}
