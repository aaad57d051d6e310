// dpsm-native's public API.
export { DPSMLoss, type ForwardOptions, type LossResult, type TokenStats } from "./loss.ts";
export {
  LOSS_KINDS,
  LossConfigSchema,
  REDUCTIONS,
  SCHEDULES,
  type LossConfig,
  type LossConfigInput,
  type LossKind,
  type Reduction,
  type Schedule,
} from "./config.ts";
export { buildInfo, setNumThreads, type BuildInfo } from "./native.ts";
