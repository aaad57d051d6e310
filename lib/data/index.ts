// The data pipelines: language modelling (WikiText in three layouts, OOD sets, GPT-2 BPE, packing,
// prepareLanguageModelData), summarisation (four data sets, encoder–decoder arrays, summary-swap noise) and
// BART's denoising pre-training rows, sharing one token cache.
export {
  hashFile,
  hashFileAsync,
  readArrayCache,
  readArrayCacheAsync,
  readTokenCache,
  readTokenCacheAsync,
  tokenCacheDir,
  writeArrayCache,
  writeTokenCache,
} from "./cache.ts";
export {
  DenoisingDataOptionsSchema,
  denoisingExamples,
  DenoisingOptionsSchema,
  prepareDenoisingData,
  splitSentences,
  type DenoisingArrays,
  type DenoisingDataOptions,
  type DenoisingOptions,
  type PreparedDenoising,
} from "./denoising.ts";
export { OOD_NAMES, OOD_SETS, oodFile, readOodDocuments, type OodName, type OodSet, type OodSplit } from "./ood.ts";
export { packDocuments, type PackedArrays, type PackedTokens, type PackOptions } from "./pack.ts";
export { parquetShards, readParquetColumns, readParquetStrings } from "./parquet.ts";
export { dataDir, dataDirPath, defaultDataDir } from "./paths.ts";
export {
  ChecksumError,
  DataUnreachableError,
  datasetStatus,
  downloadFile,
  DownloadHttpError,
  ensureDataset,
  fetchDataset,
  placementMessage,
  type DatasetStatus,
  type FetchedFile,
  type FetchOptions,
} from "./fetch.ts";
export {
  DATA_SOURCES,
  FETCHABLE,
  isFetchable,
  type DataSource,
  type FetchableName,
  type SourceFile,
} from "./sources.ts";
export {
  dataRoot,
  LanguageModelDataOptionsSchema,
  namedWikiTextFiles,
  prepareLanguageModelData,
  WIKITEXT_NAMES,
  type LanguageModelDataOptions,
} from "./prepare.ts";
export {
  countWords,
  prepareSummarizationData,
  preprocessSummarization,
  readCnnStory,
  readSummarizationFiles,
  readSummarizationJsonl,
  readSummarizationParquet,
  SUMMARIZATION_LAYOUTS,
  SUMMARIZATION_SOURCES,
  SUMMARIZATION_SPLITS,
  SummarizationDataOptionsSchema,
  summarizationFiles,
  summarizationSplit,
  SummarizationSplitOptionsSchema,
  XSUM_SPLIT_FILE,
  xsumSplitCoverage,
  type JsonlReadOptions,
  type PreparedSummarization,
  type SummarizationArrays,
  type SummarizationCounts,
  type SummarizationDataOptions,
  type SummarizationFiles,
  type SummarizationLayout,
  type SummarizationRecord,
  type SummarizationSource,
  type SummarizationSplit,
  type SummarizationSplitName,
  type SummarizationSplitOptions,
  type XSumCoverage,
} from "./summarization.ts";
export {
  applySummarySwap,
  DEFAULT_SWAP_PROBABILITY,
  SplitMix64,
  summarySwapSources,
  type SummarySwapOptions,
} from "./summary-noise.ts";
export { encodeGpt2, encodeGpt2Documents, GPT2_EOS, GPT2_TOKENIZER_ID, GPT2_VOCAB_SIZE } from "./tokenizer.ts";
export {
  detectWikiTextLayout,
  isArticleHeading,
  readWikiText,
  readWikiTextDocuments,
  readWikiTextLines,
  splitWikiTextDocuments,
  SPLITS,
  WIKITEXT_LAYOUTS,
  wikitextFiles,
  wikitextTokensFile,
  type Split,
  type WikiTextFiles,
  type WikiTextLayout,
} from "./wikitext.ts";
