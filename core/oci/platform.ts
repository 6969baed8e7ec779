/**
 * Platforms: the host's, parsing `--platform os/arch[/variant]`, and choosing a manifest from an
 * image index the way containerd's default matcher does.
 *
 * @module
 */
import type { Descriptor, Platform } from "./types.ts";
import { UnsupportedError } from "../errors.ts";

const ARCH: Record<string, string> = {
  x86_64: "amd64",
  aarch64: "arm64",
  arm: "arm",
  riscv64gc: "riscv64",
  riscv64: "riscv64",
  powerpc64le: "ppc64le",
  s390x: "s390x",
};

/** Normalises architecture names and default variants (`aarch64` → `arm64`, arm64 → v8). */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  let architecture = ARCH[p.architecture.toLowerCase()] ?? p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase();
  if (architecture === "i386" || architecture === "x86") architecture = "386";
  if (architecture === "x86-64" || architecture === "x86_64") architecture = "amd64";
  if (architecture === "arm64" && (variant === undefined || variant === "8")) variant = "v8";
  if (architecture === "amd64" && variant === undefined) variant = "v1";
  if (architecture === "arm" && variant === undefined) variant = "v7";
  if (architecture === "arm" && /^[5-8]$/.test(variant ?? "")) variant = `v${variant}`;
  return { os, architecture, ...(variant !== undefined ? { variant } : {}) };
}

/**
 * The platform berth runs on.
 *
 * @example
 * ```ts
 * import { hostPlatform } from "@berth/berth";
 * console.log(hostPlatform()); // e.g. { os: "linux", architecture: "amd64", variant: "v1" }
 * ```
 */
export function hostPlatform(): Platform {
  return normalizePlatform({ os: Deno.build.os, architecture: Deno.build.arch });
}

/**
 * Parses `os/arch[/variant]` (`linux/arm64/v8`) or `arch` alone (os linux).
 *
 * @example
 * ```ts
 * import { parsePlatform } from "@berth/berth";
 * console.log(parsePlatform("linux/arm64")); // { os: "linux", architecture: "arm64", variant: "v8" }
 * ```
 */
export function parsePlatform(text: string): Platform {
  const parts = text.split("/");
  if (parts.length > 3 || parts.some((p) => !/^[a-zA-Z0-9_.-]+$/.test(p))) {
    throw new TypeError(`Invalid platform "${text}": expected os/arch[/variant]`);
  }
  const [os, architecture, variant] = parts.length === 1 ? ["linux", parts[0]] : parts;
  return normalizePlatform({ os, architecture, ...(variant ? { variant } : {}) });
}

/**
 * `os/arch[/variant]` for messages.
 *
 * @example
 * ```ts
 * import { formatPlatform } from "@berth/berth";
 * console.log(formatPlatform({ os: "linux", architecture: "arm", variant: "v7" })); // "linux/arm/v7"
 * ```
 */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join("/");
}

/** True when an image for `have` runs where `want` is asked for. */
export function platformMatches(want: Platform, have: Platform): boolean {
  const w = normalizePlatform(want);
  const h = normalizePlatform(have);
  if (w.os !== h.os || w.architecture !== h.architecture) return false;
  if (w.architecture === "arm" && w.variant && h.variant) {
    // An armv7 host runs v5, v6 and v7 images (containerd's rule); prefer the exact one elsewhere.
    return Number(h.variant.slice(1)) <= Number(w.variant.slice(1));
  }
  return w.variant === h.variant;
}

/**
 * Picks the manifest for `want` from an index's descriptors: exact variant first, then the
 * highest compatible one. Throws `UnsupportedError` naming the platforms available.
 */
export function selectPlatform(
  manifests: readonly Descriptor[],
  want: Platform,
  what: string,
): Descriptor {
  const candidates = manifests.filter((d) => d.platform && platformMatches(want, d.platform));
  if (candidates.length > 0) {
    const w = normalizePlatform(want);
    const exact = candidates.find((d) => normalizePlatform(d.platform!).variant === w.variant);
    return exact ??
      candidates.sort((a, b) =>
        (normalizePlatform(b.platform!).variant ?? "").localeCompare(
          normalizePlatform(a.platform!).variant ?? "",
        )
      )[0];
  }
  const available = manifests.filter((d) => d.platform && d.platform.os !== "unknown")
    .map((d) => formatPlatform(d.platform!));
  throw new UnsupportedError(
    `${what} has no image for platform ${formatPlatform(want)}` +
      (available.length ? ` (it has ${[...new Set(available)].join(", ")})` : ""),
  );
}
