/**
 * Mount calls: `mount`, `umount2`, `pivot_root`, `mount_setattr`.
 *
 * @module
 */
import { call } from "./_call.ts";
import { addr, cstr } from "./_libc.ts";

const opt = (s: string | null) => addr(s === null ? null : cstr(s));

/** `mount(2)`. `source`, `fstype` and `data` may be null. The error names `target`. */
export function mount(
  source: string | null,
  target: string,
  fstype: string | null,
  flags: number,
  data: string | null = null,
): void {
  call("mount", target, opt(source), addr(cstr(target)), opt(fstype), flags, opt(data));
}

/** `umount2(2)` with `MNT_*` / `UMOUNT_NOFOLLOW` flags. */
export function umount2(target: string, flags = 0): void {
  call("umount2", target, addr(cstr(target)), flags);
}

/** `pivot_root(2)` (libc has no wrapper). */
export function pivotRoot(newRoot: string, putOld: string): void {
  call("pivot_root", newRoot, addr(cstr(newRoot)), addr(cstr(putOld)));
}

/** The `struct mount_attr` of `mount_setattr(2)`. */
export interface MountAttr {
  /** `MOUNT_ATTR_*` bits to set. */
  set?: number;
  /** `MOUNT_ATTR_*` bits to clear. */
  clear?: number;
  /** `MS_PRIVATE`, `MS_SLAVE`, `MS_SHARED` or `MS_UNBINDABLE`; 0 = unchanged. */
  propagation?: number;
}

/** `mount_setattr(2)`: change mount attributes, with `AT_RECURSIVE` for a whole tree. */
export function mountSetattr(dirfd: number, path: string, flags: number, attr: MountAttr): void {
  const a = new BigUint64Array([
    BigInt(attr.set ?? 0),
    BigInt(attr.clear ?? 0),
    BigInt(attr.propagation ?? 0),
    0n,
  ]);
  call("mount_setattr", path, dirfd, addr(cstr(path)), flags, addr(a), 32);
}
