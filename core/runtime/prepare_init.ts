/**
 * Spawning a container's init ahead of its configuration (DESIGN §3, step 1), with a small import
 * graph, so that a command can do it first thing and let the init's Deno start overlap its own
 * work: `prepareInit` now, `runContainer(spec, { init, ... })` later.
 *
 * @module
 */
export {
  discardInit,
  initCommand,
  type PreparedInit,
  prepareInit,
  type Stdio,
} from "./_prepare_init.ts";
