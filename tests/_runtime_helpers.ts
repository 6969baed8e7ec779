/**
 * Helpers shared by the runtime, exec and run tests: a busybox rootfs made once per test process,
 * container ids, and where a container's cgroups would be.
 *
 * @module
 */
import { busyboxRootfs } from "./_fixtures.ts";
import { detectCgroupLayout } from "../core/runtime/cgroups.ts";

let base: string | undefined;

/** A temp dir holding `rootfs/` (busybox), made once per process and removed at its end. */
export async function rootfsBase(prefix = "berth-runtime-"): Promise<string> {
  if (base) return base;
  const dir = Deno.makeTempDirSync({ prefix });
  globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
  await busyboxRootfs(`${dir}/rootfs`);
  base = dir;
  return dir;
}

/** A random 64-hex container id. */
export function newId(): string {
  return crypto.randomUUID().replaceAll("-", "") + crypto.randomUUID().replaceAll("-", "");
}

/** True when something is at `path` (a dangling symlink counts). */
export function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Every cgroup directory container `id` would have had (relative to this process's cgroup). */
export function cgroupDirs(id: string): string[] {
  const layout = detectCgroupLayout();
  if (layout.version === "v2") return [`${layout.mountpoint}/berth/${id}`];
  const dirs = layout.hierarchies.map((h) =>
    `${h.mountpoint}${h.own === "/" ? "" : h.own}/berth/${id}`
  );
  if (layout.unified) dirs.push(`${layout.unified.mountpoint}/berth/${id}`);
  return dirs;
}
