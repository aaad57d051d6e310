// The command line of a `dpsm-native <tool> <command> …` tool (data/cli.ts, human-eval/cli.ts): node:util's
// parseArgs with positionals and -h/--help, and the answers every such tool gives before its command runs.
import { parseArgs, type ParseArgsConfig } from "node:util";

const HELP = { help: { type: "boolean", short: "h", default: false } } as const;

type Options = NonNullable<ParseArgsConfig["options"]>;
type Parsed<O extends Options> = ReturnType<
  typeof parseArgs<{ args: string[]; allowPositionals: true; options: O & typeof HELP }>
>;
/** What a tool's command runs with, or the exit code where nothing is to run. */
export type Subcommand<O extends Options> =
  { command: string; rest: string[]; values: Parsed<O>["values"] } | { exit: number };

/**
 * Parses `argv` into the command (the first positional), the rest of the positionals and the option values — or,
 * where nothing is to run, prints and gives the exit code: 0 with the usage on stdout for --help, -h or `help`;
 * 2 on stderr for an option parseArgs refuses (its message names the option), a missing command or one not in
 * `commands`, each followed by the usage.
 */
export function parseSubcommand<const O extends Options>(
  argv: readonly string[],
  spec: { prog: string; usage: () => string; commands: readonly string[]; options: O },
): Subcommand<O> {
  const { prog, usage } = spec;
  let parsed: Parsed<O>;
  try {
    parsed = parseArgs({ args: [...argv], allowPositionals: true, options: { ...spec.options, ...HELP } });
  } catch (e) {
    console.error(`${prog}: ${(e as Error).message}\n\n${usage()}`);
    return { exit: 2 };
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  // Under a generic O, parseArgs' values are a conditional type TypeScript cannot read `help` from.
  if ((values as { help?: boolean }).help || command === "help") {
    console.log(usage());
    return { exit: 0 };
  }
  if (command === undefined || !spec.commands.includes(command)) {
    console.error(
      `${prog}: ${command === undefined ? "expected a command" : `unknown command ${JSON.stringify(command)}`}\n\n${usage()}`,
    );
    return { exit: 2 };
  }
  return { command, rest, values };
}
