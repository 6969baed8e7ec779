/**
 * mount(8)-style option lists (as in an OCI spec mount) to mount(2) flags, propagation flags and
 * the filesystem data string, following runc's table.
 *
 * @module
 */
import {
  MS_BIND,
  MS_DIRSYNC,
  MS_MANDLOCK,
  MS_NOATIME,
  MS_NODEV,
  MS_NODIRATIME,
  MS_NOEXEC,
  MS_NOSUID,
  MS_NOSYMFOLLOW,
  MS_PRIVATE,
  MS_RDONLY,
  MS_REC,
  MS_RELATIME,
  MS_REMOUNT,
  MS_SHARED,
  MS_SLAVE,
  MS_STRICTATIME,
  MS_SYNCHRONOUS,
  MS_UNBINDABLE,
} from "../../ffi/constants.ts";

/** What an option list means to mount(2). */
export interface ParsedMountOptions {
  /** Flags for the mount call. */
  flags: number;
  /** Propagation changes, each a separate mount(2) call, in order. */
  propagation: number[];
  /** The remaining options, comma-joined: filesystem data. */
  data: string;
}

// option -> [clear?, flag]
const FLAGS: Record<string, [boolean, number]> = {
  async: [true, MS_SYNCHRONOUS],
  atime: [true, MS_NOATIME],
  bind: [false, MS_BIND],
  defaults: [false, 0],
  dev: [true, MS_NODEV],
  diratime: [true, MS_NODIRATIME],
  dirsync: [false, MS_DIRSYNC],
  exec: [true, MS_NOEXEC],
  mand: [false, MS_MANDLOCK],
  noatime: [false, MS_NOATIME],
  nodev: [false, MS_NODEV],
  nodiratime: [false, MS_NODIRATIME],
  noexec: [false, MS_NOEXEC],
  nomand: [true, MS_MANDLOCK],
  norelatime: [true, MS_RELATIME],
  nostrictatime: [true, MS_STRICTATIME],
  nosuid: [false, MS_NOSUID],
  nosymfollow: [false, MS_NOSYMFOLLOW],
  rbind: [false, MS_BIND | MS_REC],
  relatime: [false, MS_RELATIME],
  remount: [false, MS_REMOUNT],
  ro: [false, MS_RDONLY],
  rw: [true, MS_RDONLY],
  strictatime: [false, MS_STRICTATIME],
  suid: [true, MS_NOSUID],
  sync: [false, MS_SYNCHRONOUS],
};

const PROPAGATION: Record<string, number> = {
  private: MS_PRIVATE,
  rprivate: MS_PRIVATE | MS_REC,
  shared: MS_SHARED,
  rshared: MS_SHARED | MS_REC,
  slave: MS_SLAVE,
  rslave: MS_SLAVE | MS_REC,
  unbindable: MS_UNBINDABLE,
  runbindable: MS_UNBINDABLE | MS_REC,
};

/** Splits an option list into mount(2) flags, propagation calls and data. */
export function parseMountOptions(options: readonly string[] | undefined): ParsedMountOptions {
  let flags = 0;
  const propagation: number[] = [];
  const data: string[] = [];
  for (const o of options ?? []) {
    const f = FLAGS[o];
    if (f) flags = f[0] ? flags & ~f[1] : flags | f[1];
    else if (PROPAGATION[o] !== undefined) propagation.push(PROPAGATION[o]);
    else data.push(o);
  }
  return { flags, propagation, data: data.join(",") };
}
