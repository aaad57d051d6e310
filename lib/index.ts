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
export {
  GPT2_PRESETS,
  GPT2Model,
  gpt2ParameterCount,
  MODEL_SIZES,
  type GenerateOptions,
  type GPT2Config,
  type ModelOptions,
  type ModelSize,
} from "./models/gpt2.ts";
export {
  Trainer,
  TrainerOptionsSchema,
  TrainerSettingsSchema,
  type TrainerSettings,
  type CheckpointEvent,
  type DoneEvent,
  type EvalEvent,
  type FitResult,
  type StepEvent,
  type TrainerEvents,
  type TrainerOptions,
  type TrainLossInput,
  type WarningEvent,
} from "./trainer.ts";
export {
  Evaluator,
  type EvalMetrics,
  type EvaluatorOptions,
  type ReliabilityBin,
  type TemperatureFit,
} from "./evaluator.ts";
export {
  prepareLanguageModelData,
  readOodDocuments,
  OOD_NAMES,
  type PackedTokens,
  type OodName,
} from "./data/index.ts";
export {
  GPT2_SEQ2SEQ_MASK,
  GPT2_SEQ2SEQ_PAD,
  gpt2Seq2SeqTokenizer,
  loadTokenizer,
  TokenizerFormatError,
  TokenizerNotFoundError,
  type DecodeOptions,
  type EncodeOptions,
  type Seq2SeqTokenizer,
  type SpecialTokenIds,
} from "./tokenizers/index.ts";
export { buildInfo, setNumThreads, type BuildInfo } from "./native.ts";
export {
  DEFAULT_ROUGE_TYPES,
  rougeCorpus,
  rougeScores,
  rougeTokenize,
  type BootstrapOptions,
  type RougeAggregate,
  type RougeCorpusOptions,
  type RougeCorpusResult,
  type RougeOptions,
  type RougePair,
  type RougeScore,
  type RougeType,
} from "./metrics/rouge.ts";
export { porterStem } from "./metrics/porter-stemmer.ts";
// BERTScore equal to the bert-score package, on a RoBERTa checkpoint folder (docs/metrics.md).
export {
  bertScore,
  BertScorer,
  type BertScoreOptions,
  type BertScoreResult,
  type BertScoreStats,
} from "./metrics/bertscore.ts";
export {
  SEQ2SEQ_PRESETS,
  Seq2SeqModel,
  seq2seqParameterCount,
  type Seq2SeqConfig,
  type Seq2SeqCreateOptions,
  type Seq2SeqGenerateOptions,
  type Seq2SeqPreset,
} from "./models/bart.ts";
export { MODEL_LIMITS } from "./models/limits.ts";
export {
  isLanguageModel,
  type CausalInputs,
  type EncoderDecoderInputs,
  type LanguageModel,
  type ModelInputs,
} from "./models/language-model.ts";
export type { SaveOptions } from "./models/checkpoint.ts";
export type { ModelData, ModelShape } from "./data/model-data.ts";
export {
  prepareSummarizationData,
  summarizationSplit,
  SUMMARIZATION_SOURCES,
  type PreparedSummarization,
  type SummarizationDataOptions,
  type SummarizationRecord,
  type SummarizationSource,
} from "./data/summarization.ts";
export { summarySwapSources } from "./data/summary-noise.ts";

// ---- What the examples use (examples/*.ts import only this file) ----------------------------------------------
// Experiments from code: a spec, its settings resolved from a profile with overrides, the runs, the report.
export { exp1, type Exp1Config, type Exp1Settings } from "./experiments/exp1-lm/index.ts";
export { exp2, type Exp2Config, type Exp2Settings } from "./experiments/exp2-summarization/index.ts";
export {
  resolveConfig,
  runExperiment,
  writeReport,
  type ExperimentRun,
  type RunOptions,
} from "./experiments/framework/index.ts";
export type { AnyExperimentSpec, ConfigOf, ExperimentSpec } from "./experiments/framework/spec.ts";
// The data folder, WikiText's tokenized release and GPT-2 BPE, as the data pipelines read them.
export { dataDir } from "./data/paths.ts";
export { readWikiText, SPLITS as WIKITEXT_SPLITS, type Split as WikiTextSplit } from "./data/wikitext.ts";
export { encodeGpt2, GPT2_VOCAB_SIZE } from "./data/tokenizer.ts";
// Calibration of top-1 predictions from per-token statistics (DPSMLoss.forward's `stats`; docs/metrics.md).
export { expectedCalibrationError } from "./metrics/calibration.ts";
// Files written whole or not at all (a temporary file, fsync, rename), as every file of a run is.
export { writeFileAtomic, writeJsonAtomic } from "./io/atomic.ts";
// Aligned Markdown tables, as the reports print them.
export { formatTable, type Align, type Column } from "./report/table.ts";

// ---- Types the signatures above name (so the API reference links them) ---------------------------------------
export { BaselineLossSchema, type TrainLoss } from "./config.ts";
export { EvaluatorOptionsSchema } from "./evaluator.ts";
export type { DistributedDocument } from "./distributed.ts";
export type { NativeProgress } from "./native.ts";
export type { ResolvedTrainerOptions, TrainerDocument } from "./trainer-options.ts";
export { OOD_SETS, type OodSplit } from "./data/ood.ts";
export type { SummarizationArrays, SummarizationSplit } from "./data/summarization.ts";
export type { SummarySwapOptions } from "./data/summary-noise.ts";
export type { Resampler } from "./metrics/bootstrap.ts";
export { SIZE_FIELDS as SEQ2SEQ_SIZE_FIELDS, Seq2SeqGenerateOptionsSchema } from "./models/bart.ts";
