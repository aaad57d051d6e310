// Hugging Face dataset shards: finding one split's parquet files, and reading string columns with hyparquet.
import fs from "node:fs";
import path from "node:path";
import { checkRegularFile } from "../io/read.ts";

function isDir(p: string): boolean {
  return fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

/**
 * Shards of split `hfSplit` ("train", "validation", "test") in one folder: `<split>-00000-of-00002.parquet` (the
 * dataset repository) or `<split>/0000.parquet` (the refs/convert/parquet branch). An incomplete set of shards
 * is an error, since reading the rest would silently give a smaller corpus.
 */
export function parquetShards(base: string, hfSplit: string): string[] {
  const named = /^(.+)-(\d+)-of-(\d+)\.parquet$/;
  const shards = (isDir(base) ? fs.readdirSync(base) : [])
    .map((f) => named.exec(f))
    .filter((m): m is RegExpExecArray => m !== null && m[1] === hfSplit)
    .map((m) => ({ file: path.join(base, m[0]), index: Number(m[2]), of: Number(m[3]) }));
  if (shards.length > 0) {
    shards.sort((a, b) => a.index - b.index);
    const of = shards[0]!.of;
    if (shards.length !== of || shards.some((s, i) => s.index !== i || s.of !== of)) {
      throw new Error(
        `${base}: incomplete parquet shards for ${hfSplit}: found ${shards.map((s) => path.basename(s.file)).join(", ")}, expected ${of}`,
      );
    }
    return shards.map((s) => s.file);
  }
  const sub = path.join(base, hfSplit);
  if (!isDir(sub)) return [];
  return fs
    .readdirSync(sub)
    .filter((f) => /^\d+\.parquet$/.test(f))
    .sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10))
    .map((f) => path.join(sub, f));
}

/**
 * The values of each of `columns` in `file`, in row order; a null value reads as "". A missing column or a
 * non-string value is an error naming the file, the column and the row.
 */
export async function readParquetColumns<C extends string>(
  file: string,
  columns: readonly C[],
): Promise<Record<C, string[]>> {
  let rows: Record<string, unknown>[];
  try {
    // Loaded on first use: hyparquet and its decompressors (~20 MB resident) stay out of a plain import.
    const [{ asyncBufferFromFile, parquetReadObjects }, { compressors }] = await Promise.all([
      import("hyparquet"),
      import("hyparquet-compressors"),
    ]);
    checkRegularFile(file, "parquet shard");
    rows = await parquetReadObjects({ file: await asyncBufferFromFile(file), columns: [...columns], compressors });
    // A shard of 0 rows read as a valid part of a split of 0 examples; Hugging Face writes none.
    if (rows.length === 0) throw new Error("the shard holds 0 rows");
    const absent = columns.filter((c) => !(c in rows[0]!));
    if (absent.length > 0) throw new Error(`no such column "${absent.join('", "')}"`);
  } catch (e) {
    const which = columns.map((c) => `"${c}"`).join(", ");
    throw new Error(`${file}: could not read parquet column(s) ${which}: ${(e as Error).message}`, { cause: e });
  }
  const out = {} as Record<C, string[]>;
  for (const column of columns) {
    const values = new Array<string>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const v = rows[i]![column];
      if (v === null || v === undefined) values[i] = "";
      else if (typeof v === "string") values[i] = v;
      else throw new Error(`${file}: column "${column}" row ${i}: expected a string, got ${typeof v}`);
    }
    out[column] = values;
  }
  return out;
}

/** The values of one string column of `file`, as readParquetColumns reads them. */
export async function readParquetStrings(file: string, column = "text"): Promise<string[]> {
  return (await readParquetColumns(file, [column]))[column]!;
}
