/**
 * `bpf(2)`: the one call, with the attribute union passed as bytes.
 *
 * @module
 */
import { call } from "./_call.ts";
import { addr } from "./_libc.ts";

/** `bpf(2)`: command `cmd` with the `union bpf_attr` bytes `attr`; returns the call's result. */
export function bpf(cmd: number, attr: Uint8Array): number {
  return call("bpf", cmd, cmd, addr(attr), attr.byteLength);
}
