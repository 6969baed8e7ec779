/**
 * Process identity on the host: a pid alone may be reused by an unrelated process once the
 * container's has exited and been reaped; the pid with the process's start time (field 22 of
 * /proc/PID/stat, in clock ticks since boot, unchanged by execve) names one process for the
 * life of the system. A store records both when a container starts and asks
 * {@linkcode processAlive} later.
 *
 * @module
 */

interface Stat {
  state: string;
  startTime: string;
}

// /proc/PID/stat: "pid (comm) state ppid ...": comm may hold spaces and parentheses, so the
// fields are counted from the last ')'.
function stat(pid: number): Stat | undefined {
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  // fields[0] is field 3 (state), so field 22 (starttime) is fields[19]
  const fields = text.slice(close + 2).split(" ");
  const startTime = fields[19];
  if (!fields[0] || !/^\d+$/.test(startTime ?? "")) return undefined;
  return { state: fields[0], startTime };
}

/**
 * The start time of process `pid` (field 22 of /proc/PID/stat: clock ticks after boot, as a
 * decimal string), or undefined when there is no such process.
 *
 * @example
 * ```ts
 * import { processStartTime } from "./process_info.ts";
 * console.log(/^\d+$/.test(processStartTime(Deno.pid)!)); // true
 * ```
 */
export function processStartTime(pid: number): string | undefined {
  return stat(pid)?.startTime;
}

/**
 * Whether the process that had `startTime` (see {@linkcode processStartTime}) still runs as
 * `pid`: false when the pid is gone, was reused by another process, or is a zombie (exited, not
 * yet reaped).
 *
 * @example
 * ```ts
 * import { processAlive, processStartTime } from "./process_info.ts";
 * const start = processStartTime(Deno.pid)!;
 * console.log(processAlive(Deno.pid, start), processAlive(Deno.pid, "1")); // true false
 * ```
 */
export function processAlive(pid: number, startTime: string): boolean {
  const s = stat(pid);
  return s !== undefined && s.startTime === startTime && s.state !== "Z" && s.state !== "X";
}
