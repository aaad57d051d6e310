// The language-modelling data pipeline: readers (WikiText in three layouts, OOD sets), GPT-2 BPE, packing,
// the token cache, and prepareLanguageModelData, which ties them together.
export { hashFile, readTokenCache, tokenCacheDir, writeTokenCache } from "./cache.ts";
export { OOD_NAMES, OOD_SETS, oodFile, readOodDocuments, type OodName, type OodSet, type OodSplit } from "./ood.ts";
export { packDocuments, type PackedArrays, type PackedTokens, type PackOptions } from "./pack.ts";
export { readParquetStrings } from "./parquet.ts";
export { dataDir } from "./paths.ts";
export { LanguageModelDataOptionsSchema, prepareLanguageModelData, type LanguageModelDataOptions } from "./prepare.ts";
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
