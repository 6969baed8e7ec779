/**
 * An image's merged filesystem written into one directory (`berth unpack`, like `umoci unpack` and
 * `crane export`): the layers applied in order by one flatten-mode applier, so whiteouts become
 * deletions and nothing any layer says can write outside the directory (see `applier.ts`).
 *
 * @module
 */
import { readLayer } from "../image/read_layer.ts";
import { type ApplierStats, createApplier } from "./applier.ts";
import type { LayerSource } from "./snapshotter.ts";

/** Options of {@linkcode flattenImage}. */
export interface FlattenOptions {
  /** Prefix of error messages, e.g. `Cannot unpack "busybox"`. */
  what: string;
}

/**
 * Applies `layers` (bottom first) into the existing directory `dir`. Each layer's diffID is
 * checked as it streams; on an error `dir` holds a partial tree, which the caller removes.
 * Resolves with the applier's counters (entries, bytes, skipped xattrs).
 */
export async function flattenImage(
  layers: readonly LayerSource[],
  dir: string,
  options: FlattenOptions,
): Promise<ApplierStats> {
  const { what } = options;
  const applier = createApplier(dir, { mode: "flatten", what });
  try {
    for (const source of layers) {
      const layer = source.layer;
      // The same prefix readLayer uses, so that it is not repeated in messages.
      applier.what = `${what}: layer ${layer.digest}`;
      await readLayer(source.open(), layer, { what, sink: applier });
      applier.finish();
    }
    return applier.stats;
  } finally {
    applier.close();
  }
}
