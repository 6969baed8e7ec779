/**
 * The supervisor of a detached container (`run -d`, `start`): berth itself in a hidden monitor
 * mode (`berth __monitor ROOT ID`), like conmon or containerd's shim. It leaves the caller's
 * session, runs the container with its stdout and stderr going to the json-file log, records its
 * state, restarts it as its `--restart` policy says for as long as the supervisor lives, and
 * removes it at the end when it was started with `--rm`. The container's init dies with its
 * supervisor (PR_SET_PDEATHSIG), so a killed supervisor never leaves an unwatched container.
 *
 * @module
 */
import type { Store } from "./store.ts";
import type { ContainerRecord } from "../metadata/container_db.ts";
import { ContainerStartError } from "../runtime/start_error.ts";
import { startContainer } from "./containers.ts";
import { processAlive, processStartTime } from "../runtime/process_info.ts";
import { logPath, LogWriter } from "./container_logs.ts";
import { close, dup3, openat } from "../../ffi/fs.ts";
import { setsid } from "../../ffi/process.ts";
import { selfCommand } from "../self.ts";
import { AT_FDCWD, O_APPEND, O_CLOEXEC, O_CREAT, O_WRONLY } from "../../ffi/constants.ts";

/**
 * The monitor's first (and only) message to the process that spawned it: the container started,
 * it could not start, or another supervisor already runs it.
 */
type Hello = { started: true; pid: number } | { error: string; code: number } | {
  running: true;
};

/**
 * Starts the supervisor of the created (or exited) container `record` and waits until the
 * container runs (resolving with its host pid) or could not start (throwing
 * `ContainerStartError` with docker's exit code). The supervisor then lives on alone.
 */
export async function spawnSupervisor(
  store: Store,
  record: ContainerRecord,
): Promise<number | undefined> {
  const { command, args } = selfCommand("__monitor", [
    "--quiet",
    "--unstable-lazy-dynamic-imports",
  ]);
  const child = new Deno.Command(command, {
    args: [...args, store.root, record.id],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
    cwd: "/",
    env: { DENO_NO_UPDATE_CHECK: "1" },
  }).spawn();
  const reader = child.stdout.getReader();
  let text = "";
  const decoder = new TextDecoder();
  try {
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    await reader.cancel().catch(() => {});
    child.unref();
  }
  const line = text.split("\n")[0];
  let hello: Hello;
  try {
    hello = JSON.parse(line);
  } catch {
    const status = await child.status;
    // The supervisor writes its own errors to this file (its stderr is not the caller's).
    const why = (await Deno.readTextFile(monitorLogPath(store, record.id)).catch(() => ""))
      .trim().split("\n").at(-1);
    throw new ContainerStartError(
      `the supervisor of container ${record.id.slice(0, 12)} exited (${status.code}) ` +
        `before starting it${why ? `: ${why}` : ""}`,
    );
  }
  if ("error" in hello) throw new ContainerStartError(hello.error, hello.code);
  return "running" in hello ? undefined : hello.pid;
}

/** The supervisor's own error output (not the container's). */
function monitorLogPath(store: Store, id: string): string {
  return `${store.containers.path(id)}/monitor.log`;
}

/** A container that ran this long restarts without delay again (docker resets its backoff). */
const BACKOFF_RESET_MS = 10_000;

/** Restart delay after the n-th restart: docker's 100 ms, doubling, at most 1 minute. */
function backoff(n: number): number {
  return Math.min(100 * 2 ** n, 60_000);
}

/** Whether the policy restarts a container that exited with `code` after `restarts` restarts. */
function shouldRestart(record: ContainerRecord, code: number, restarts: number): boolean {
  const policy = record.restartPolicy;
  if (!policy || policy.name === "no" || record.state.stopRequested) return false;
  if (policy.name === "on-failure") {
    return code !== 0 && (policy.maximumRetryCount === undefined ||
      policy.maximumRetryCount === 0 || restarts < policy.maximumRetryCount);
  }
  return true; // always, unless-stopped (a stop sets stopRequested)
}

/** The monitor mode's entry: `berth __monitor ROOT ID`. */
export async function monitor(args: string[]): Promise<void> {
  const [root, id] = args;
  redirectStderr(root, id);
  try {
    setsid(); // no controlling terminal, no SIGHUP when the caller's session ends
  } catch { /* already a session leader */ }
  const { Store } = await import("./store.ts");
  const store = await Store.open({ root });
  const hello = (message: Hello) => {
    // One line to the `run -d` that waits for it; then stdout goes to /dev/null so that nothing
    // later can fail on a pipe whose reader is gone.
    writeStdout(new TextEncoder().encode(JSON.stringify(message) + "\n"));
    silenceStdout();
  };
  // Claimed under the record's lock: of two `start`s at once, one supervisor runs it.
  let taken = false;
  let record = await store.containers.update(id, (r) => {
    const other = r.state.monitorPid !== undefined && r.state.monitorPid !== Deno.pid &&
      processAlive(r.state.monitorPid, r.state.monitorStart ?? "");
    if (other || processAlive(r.state.pid ?? -1, r.state.pidStart ?? "")) return;
    taken = true;
    r.state.monitorPid = Deno.pid;
    r.state.monitorStart = processStartTime(Deno.pid);
    r.state.stopRequested = false;
  });
  if (!taken) {
    hello({ running: true });
    return;
  }
  const log = await LogWriter.open(logPath(store, id));
  let said = false;
  let backoffs = 0;
  try {
    for (let restarts = record.restartCount ?? 0;;) {
      let code: number;
      const began = Date.now();
      try {
        const result = await startContainer(store, record, {
          stdin: "null",
          stdout: log.sink("stdout"),
          stderr: log.sink("stderr"),
          onStart: (pid) => {
            if (!said) hello({ started: true, pid });
            said = true;
          },
        });
        code = result.exitCode;
      } catch (e) {
        const code = (e as { exitCode?: number }).exitCode ?? 125;
        if (!said) hello({ error: (e as Error).message, code });
        said = true;
        return;
      }
      record = await store.containers.read(id);
      if (!shouldRestart(record, code, restarts)) break;
      restarts++;
      record = await store.containers.update(id, (r) => {
        r.restartCount = restarts;
        r.state.status = "restarting";
      });
      if (Date.now() - began >= BACKOFF_RESET_MS) backoffs = 0;
      await new Promise((r) => setTimeout(r, backoff(backoffs++)));
      record = await store.containers.read(id);
      if (record.state.stopRequested) {
        // Stopped while waiting to restart: it stays exited with its last exit code.
        record = await store.containers.update(id, (r) => {
          r.state.status = "exited";
        });
        break;
      }
    }
  } finally {
    log.close();
    if (!said) hello({ error: `container ${id.slice(0, 12)} did not start`, code: 125 });
    const final = await store.containers.read(id).catch(() => undefined);
    if (final) {
      await store.containers.update(id, (r) => {
        delete r.state.monitorPid;
        delete r.state.monitorStart;
      }).catch(() => {});
      if (final.hostConfig.AutoRemove) await store.containers.remove(final).catch(() => {});
    }
  }
}

function writeStdout(bytes: Uint8Array): void {
  try {
    let n = 0;
    while (n < bytes.byteLength) n += Deno.stdout.writeSync(bytes.subarray(n));
  } catch { /* the caller is gone */ }
}

/** Points fd 1 at /dev/null. */
function silenceStdout(): void {
  try {
    const fd = openat(AT_FDCWD, "/dev/null", O_WRONLY | O_CLOEXEC);
    dup3(fd, 1);
    close(fd);
  } catch { /* keep the pipe */ }
}

/** Sends the supervisor's own stderr to `containers/<id>/monitor.log` (the caller's is gone). */
function redirectStderr(root: string, id: string): void {
  try {
    const fd = openat(
      AT_FDCWD,
      `${root}/containers/${id}/monitor.log`,
      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
      0o640,
    );
    dup3(fd, 2);
    close(fd);
  } catch { /* keep /dev/null */ }
}
