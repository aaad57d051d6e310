// Job keys: the folder of a job, its group, and the check that a job list names every job once.
import type { GroupKey, Job, JobKey } from "./spec.ts";

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9.+_-]*$/;

function segment(value: string, field: string): string {
  if (!SEGMENT.test(value)) {
    const expected = "letters, digits and . + _ - (not first)";
    throw new RangeError(`job key.${field}: expected ${expected}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function paramsPart(params: JobKey["params"]): string {
  if (!params) return "";
  return Object.keys(params)
    .sort()
    .map((name) => {
      const v = params[name]!;
      if (!Number.isFinite(v)) throw new RangeError(`job key.params.${name}: expected a finite number, got ${v}`);
      return `-${segment(name, `params.${name}`)}${v}`;
    })
    .join("");
}

/** The job's folder under runs/, e.g. "tiny/clean/dpsm-linear-warmup0.05/seed0"; also how progress names it. */
export function jobId(key: JobKey): string {
  if (!Number.isInteger(key.seed) || key.seed < 0) {
    throw new RangeError(`job key.seed: expected an integer >= 0, got ${key.seed}`);
  }
  return [
    segment(key.model, "model"),
    segment(key.setting, "setting"),
    `${segment(key.variation, "variation")}${paramsPart(key.params)}`,
    `seed${key.seed}`,
  ].join("/");
}

export function groupKeyOf(key: JobKey): GroupKey {
  const { seed: _seed, ...group } = key;
  return group;
}

/** Equal for two keys of the same group (params compared by value, in any order). */
export function groupId(key: GroupKey | JobKey): string {
  const params = key.params
    ? Object.keys(key.params)
        .sort()
        .map((k) => [k, key.params![k]])
    : [];
  return JSON.stringify([key.model, key.setting, key.variation, params]);
}

/** The variation, then its params: "dpsm-linear (warmup 0.05)". */
export function defaultGroupName(key: GroupKey): string {
  const params = key.params ? Object.keys(key.params).sort() : [];
  return params.length ? `${key.variation} (${params.map((p) => `${p} ${key.params![p]}`).join(", ")})` : key.variation;
}

/** Throws when two jobs share a key or a folder. */
export function checkJobs(jobs: readonly Job[]): void {
  const seen = new Map<string, JobKey>();
  for (const job of jobs) {
    const id = jobId(job.key);
    if (seen.has(id)) {
      throw new RangeError(`jobs: two jobs have the key ${JSON.stringify(job.key)} (folder runs/${id})`);
    }
    seen.set(id, job.key);
  }
}
