// The `dpsm-native` command: `dpsm-native <experiment> [flags]`, one subcommand per registered experiment,
// `dpsm-native data fetch|list` for the data sets, `dpsm-native human-eval prepare|analyze` for exp2's human
// preference study and `dpsm-native launch … -- <command>` for data-parallel runs.
import { EXPERIMENTS } from "./experiments/index.ts";
import { runDataCli } from "./data/cli.ts";
import { runExperimentCli } from "./experiments/framework/cli.ts";
import { runHumanEvalCli } from "./human-eval/cli.ts";
import { runLaunchCli } from "./launch.ts";

const PROG = "dpsm-native";

function usage(): string {
  const width = Math.max(...[...Object.keys(EXPERIMENTS), "human-eval"].map((n) => n.length)) + 2;
  return [
    `usage: ${PROG} <command> [flags]     (${PROG} <command> --help lists a command's flags)`,
    "",
    "commands:",
    ...Object.entries(EXPERIMENTS).map(([name, spec]) => `  ${name.padEnd(width)}${spec.title}`),
    `  ${"data".padEnd(width)}fetch the public data sets (WikiText-2/-103, CNN/DM, XSum) or list what is present`,
    `  ${"human-eval".padEnd(width)}a human preference study of an exp2 run: rater pages, then their analysis`,
    `  ${"launch".padEnd(width)}run a command data-parallel, one process per rank (launch --help)`,
  ].join("\n");
}

/** Runs the command line `argv` (without node and the script); resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    console.log(usage());
    return command === undefined ? 2 : 0;
  }
  if (command === "data") return runDataCli(rest, `${PROG} data`);
  if (command === "human-eval") return runHumanEvalCli(rest, `${PROG} human-eval`);
  if (command === "launch") return runLaunchCli(rest, isCommand);
  const spec = EXPERIMENTS[command];
  if (!spec) {
    const known = Object.keys(EXPERIMENTS).join(", ");
    console.error(`${PROG}: unknown command ${JSON.stringify(command)}; expected one of ${known}\n\n${usage()}`);
    return 2;
  }
  return runExperimentCli(spec, rest, `${PROG} ${command}`);
}

/** Whether `name` is one of this command's subcommands (what `launch` runs through bin/dpsm-native.mjs). */
export function isCommand(name: string): boolean {
  return name === "data" || Object.hasOwn(EXPERIMENTS, name);
}
