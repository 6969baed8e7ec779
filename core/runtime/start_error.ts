/**
 * The error of a container that could not be started.
 *
 * @module
 */
import { BerthError } from "../errors.ts";

/**
 * A container could not be started: a setup step failed (exit code 125, docker's), or its command
 * cannot be run (126: not executable, 127: not found), as `docker run` reports them.
 *
 * @example
 * ```ts
 * import { BerthError, ContainerStartError } from "@berth/berth";
 * const e = new ContainerStartError('exec: "nope": executable file not found in $PATH', 127);
 * console.log(e instanceof BerthError, e.exitCode); // true 127
 * ```
 */
export class ContainerStartError extends BerthError {
  /** 125, 126 or 127. */
  override readonly exitCode: number;
  /**
   * Describes why the container did not start.
   *
   * @param message one line naming what failed
   * @param exitCode 125, 126 or 127
   */
  constructor(message: string, exitCode = 125, options?: ErrorOptions) {
    super(message, options);
    this.exitCode = exitCode;
  }
}
