/**
 * docker's pull output. On a terminal: one line per layer, redrawn in place (`a3ed95caeb02:
 * Downloading [=====>     ]  1.2MB/3.4MB 5.1MB/s`); otherwise one plain line per state change
 * (no byte counts), as docker prints into a pipe.
 *
 * @module
 */
import type { PullEvent } from "../store/pull.ts";
import { humanSize } from "./_human.ts";

/** Options of {@linkcode PullProgress}. */
export interface PullProgressOptions {
  /** Writes text. */
  out: (text: string) => void;
  /** Draw bars and redraw lines (a terminal). */
  tty: boolean;
  /** Terminal width; bars are drawn when it is over 110 columns, as docker does. */
  columns?: number;
}

interface Line {
  id: string;
  text: string;
  started?: number;
}

/** The `[=====>      ]` bar of docker's progress (50 wide). */
export function progressBar(current: number, total: number): string {
  if (total <= 0) return "";
  const filled = Math.min(50, Math.floor((current / total) * 100 / 2));
  return `[${"=".repeat(filled)}>${" ".repeat(Math.max(0, 50 - filled - 1))}]`;
}

/** Renders {@linkcode PullEvent}s the way docker shows a pull. */
export class PullProgress {
  readonly #o: PullProgressOptions;
  readonly #lines: Line[] = [];
  readonly #byId = new Map<string, Line>();
  readonly #lastStatus = new Map<string, string>();

  constructor(options: PullProgressOptions) {
    this.#o = options;
  }

  /** Handles one event. */
  handle(e: PullEvent): void {
    switch (e.type) {
      case "start":
        this.#o.out(`${e.reference}: Pulling from ${e.repository}\n`);
        return;
      case "resolved":
        return;
      case "retry": {
        if (e.id) {
          if (!this.#o.tty) {
            this.#o.out(
              `${e.id}: Retrying in ${seconds(e.delayMs)} (${e.reason}${
                e.resumeAt ? `; resuming at byte ${e.resumeAt}` : ""
              })\n`,
            );
          }
          return;
        }
        this.#above(
          `${e.reason}: ${e.retryAfter ? "the registry asks to wait" : "waiting"} ${
            seconds(e.delayMs)
          } before retrying\n`,
        );
        return;
      }
      case "layer": {
        let text: string = e.status;
        if (e.status === "Retrying") {
          text = `Retrying in ${seconds((e.retryInSeconds ?? 0) * 1000)}`;
        }
        if (!this.#o.tty) {
          if (e.status === "Downloading" || e.status === "Extracting" || e.status === "Retrying") {
            return;
          }
          if (this.#lastStatus.get(e.id) === text) return;
          this.#lastStatus.set(e.id, text);
          this.#o.out(`${e.id}: ${text}\n`);
          return;
        }
        let line = this.#byId.get(e.id);
        if ((e.status === "Downloading" || e.status === "Extracting") && e.total !== undefined) {
          const now = performance.now();
          if (line && e.status === "Downloading" && line.started === undefined) line.started = now;
          const bar = (this.#o.columns ?? 80) > 110
            ? `${progressBar(e.current ?? 0, e.total)} `
            : "";
          const numbers = (e.current ?? 0) <= e.total
            ? `${humanSize(e.current ?? 0).padStart(8)}/${humanSize(e.total)}`
            : "";
          let speed = "";
          if (
            e.status === "Downloading" && line?.started !== undefined && now - line.started > 200
          ) {
            speed = ` ${humanSize(((e.current ?? 0) * 1000) / (now - line.started))}/s`;
          }
          text = `${e.status} ${bar}${numbers}${speed}`;
        }
        if (!line) {
          line = { id: e.id, text };
          if (e.status === "Downloading") line.started = performance.now();
          this.#lines.push(line);
          this.#byId.set(e.id, line);
          this.#o.out(`${e.id}: ${text}\n`);
          return;
        }
        if (line.text === text) return;
        line.text = text;
        const up = this.#lines.length - this.#lines.indexOf(line);
        this.#o.out(`\x1b[${up}A\r\x1b[2K${e.id}: ${text}\r\x1b[${up}B`);
        return;
      }
    }
  }

  /** Prints a line above nothing (plain) or below the layer lines (terminal). */
  #above(text: string): void {
    if (!this.#o.tty) {
      this.#o.out(text);
      return;
    }
    // Later layer lines would be redrawn relative to the bottom: this line becomes part of it.
    this.#o.out(text);
    const line = { id: "", text: text.trimEnd() };
    this.#lines.push(line);
  }
}

function seconds(ms: number): string {
  const s = Math.max(1, Math.ceil(ms / 1000));
  return s === 1 ? "1 second" : `${s} seconds`;
}
