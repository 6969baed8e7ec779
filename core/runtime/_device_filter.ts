/**
 * Device rules on cgroup2: cgroup2 has no devices.allow/deny files; the kernel runs a
 * `BPF_PROG_TYPE_CGROUP_DEVICE` program attached to the cgroup instead. This compiles the spec's
 * rules into such a program (as runc's devicefilter does: the last matching rule decides) and
 * loads and attaches it.
 *
 * @module
 */
import {
  AT_FDCWD,
  BPF_CGROUP_DEVICE,
  BPF_F_ALLOW_MULTI,
  BPF_PROG_ATTACH,
  BPF_PROG_LOAD,
  BPF_PROG_TYPE_CGROUP_DEVICE,
  O_CLOEXEC,
  O_DIRECTORY,
  O_RDONLY,
} from "../../ffi/constants.ts";
import { bpf } from "../../ffi/bpf.ts";
import { close, openat } from "../../ffi/fs.ts";
import type { SpecDeviceCgroup } from "./spec_types.ts";

// struct bpf_insn: u8 code, u8 dst:4|src:4, s16 off, s32 imm
type Insn = [code: number, dst: number, src: number, off: number, imm: number];

const LDXW = 0x61; // dst = *(u32 *)(src + off)
const AND_K = 0x57; // dst &= imm
const RSH_K = 0x77; // dst >>= imm
const MOV_X = 0xbf; // dst = src
const MOV_K = 0xb7; // dst = imm
const JNE_K = 0x55; // if dst != imm goto pc + off
const EXIT = 0x95;

const TYPE: Record<string, number> = { b: 1, c: 2 }; // BPF_DEVCG_DEV_BLOCK / _CHAR
const ACCESS: Record<string, number> = { m: 1, r: 2, w: 4 }; // BPF_DEVCG_ACC_*

function accessBits(access = "rwm"): number {
  let bits = 0;
  for (const c of access) bits |= ACCESS[c] ?? 0;
  return bits;
}

/**
 * The program for `rules` (in order; the last matching one decides; no match denies). Registers:
 * r2 = device type, r3 = requested access, r4 = major, r5 = minor.
 */
export function compileDeviceFilter(rules: readonly SpecDeviceCgroup[]): Insn[] {
  const prog: Insn[] = [
    [LDXW, 2, 1, 0, 0],
    [AND_K, 2, 0, 0, 0xffff],
    [LDXW, 3, 1, 0, 0],
    [RSH_K, 3, 0, 0, 16],
    [LDXW, 4, 1, 4, 0],
    [LDXW, 5, 1, 8, 0],
  ];
  // last rule first: the first match in the program is the last in the list
  for (const rule of [...rules].reverse()) {
    const block: Insn[] = [];
    const type = rule.type ?? "a";
    if (type !== "a") block.push([JNE_K, 2, 0, -1, TYPE[type] ?? 0]);
    const access = accessBits(rule.access);
    if (access !== 7) {
      block.push([MOV_X, 1, 3, 0, 0], [AND_K, 1, 0, 0, ~access & 7], [JNE_K, 1, 0, -1, 0]);
    }
    if (rule.major !== undefined) block.push([JNE_K, 4, 0, -1, rule.major]);
    if (rule.minor !== undefined) block.push([JNE_K, 5, 0, -1, rule.minor]);
    const unconditional = block.length === 0;
    block.push([MOV_K, 0, 0, 0, rule.allow ? 1 : 0], [EXIT, 0, 0, 0, 0]);
    // the jumps skip to the end of this block
    block.forEach((insn, i) => {
      if (insn[3] === -1) insn[3] = block.length - 1 - i;
    });
    prog.push(...block);
    // the verifier refuses unreachable code: nothing may follow a rule matching everything
    if (unconditional) return prog;
  }
  prog.push([MOV_K, 0, 0, 0, 0], [EXIT, 0, 0, 0, 0]);
  return prog;
}

/** Buffers passed to the kernel by address, held until the call returned. */
export let pinned: Uint8Array[] = [];

function encode(prog: Insn[]): Uint8Array {
  const buf = new Uint8Array(prog.length * 8);
  const v = new DataView(buf.buffer);
  prog.forEach(([code, dst, src, off, imm], i) => {
    v.setUint8(i * 8, code);
    v.setUint8(i * 8 + 1, (src << 4) | dst);
    v.setInt16(i * 8 + 2, off, true);
    v.setInt32(i * 8 + 4, imm, true);
  });
  return buf;
}

/** Loads the filter for `rules` and attaches it to the cgroup2 directory `dir`. */
export function attachDeviceFilter(dir: string, rules: readonly SpecDeviceCgroup[]): void {
  const insns = encode(compileDeviceFilter(rules));
  const license = new TextEncoder().encode("Apache-2.0\0");
  const ptr = (b: Uint8Array) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
  const load = new Uint8Array(128);
  const lv = new DataView(load.buffer);
  lv.setUint32(0, BPF_PROG_TYPE_CGROUP_DEVICE, true);
  lv.setUint32(4, insns.byteLength / 8, true);
  lv.setBigUint64(8, ptr(insns), true);
  lv.setBigUint64(16, ptr(license), true);
  pinned = [insns, license];
  const prog = bpf(BPF_PROG_LOAD, load);
  pinned = [];
  try {
    const cg = openat(AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    try {
      const attach = new Uint8Array(20);
      const av = new DataView(attach.buffer);
      av.setUint32(0, cg, true);
      av.setUint32(4, prog, true);
      av.setUint32(8, BPF_CGROUP_DEVICE, true);
      av.setUint32(12, BPF_F_ALLOW_MULTI, true);
      bpf(BPF_PROG_ATTACH, attach);
    } finally {
      close(cg);
    }
  } finally {
    close(prog); // the cgroup holds the program from now on
  }
}
