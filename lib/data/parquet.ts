// One string column of a parquet file (Hugging Face dataset shards), read with hyparquet.
import { asyncBufferFromFile, parquetReadObjects } from "hyparquet";
import { compressors } from "hyparquet-compressors";

/** The values of `column` in `file`, in row order; a null value reads as "". */
export async function readParquetStrings(file: string, column = "text"): Promise<string[]> {
  let values: unknown[];
  try {
    const rows = await parquetReadObjects({ file: await asyncBufferFromFile(file), columns: [column], compressors });
    if (rows.length > 0 && !(column in rows[0]!)) throw new Error("no such column");
    values = rows.map((r) => r[column]);
  } catch (e) {
    throw new Error(`${file}: could not read parquet column "${column}": ${(e as Error).message}`, { cause: e });
  }
  const out = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined) out[i] = "";
    else if (typeof v === "string") out[i] = v;
    else throw new Error(`${file}: column "${column}" row ${i}: expected a string, got ${typeof v}`);
  }
  return out;
}
