/**
 * What every CLI command module exports, and the context they run in.
 *
 * @module
 */
import type { FlagSpec, ParsedArgs } from "./_args.ts";
import type { Store } from "../store/store.ts";

/** The environment of one CLI invocation. */
export interface CliContext {
  /** `--root` given on the command line, if any. */
  root?: string;
  /** Opens the store (`--root`, `$BERTH_ROOT`, `/var/lib/berth`). */
  store(): Promise<Store>;
  /** Writes text to stdout. */
  out(text: string): void;
  /** Writes text to stderr. */
  err(text: string): void;
}

/** A CLI command. */
export interface Command {
  /** Usage line after `berth `, e.g. `load [OPTIONS]`. */
  usage: string;
  /** One-line description. */
  summary: string;
  flags: FlagSpec;
  /** Stop flag parsing at the first positional (run, exec). */
  stopAtPositional?: boolean;
  /** Runs the command; resolves with the exit status. */
  run(parsed: ParsedArgs, ctx: CliContext): Promise<number>;
}
