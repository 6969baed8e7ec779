/**
 * berth's command-line entry. The hidden init mode (the first process of a container, see DESIGN.md §3)
 * is dispatched before anything else is imported, to keep the container start path small.
 *
 * @module
 */
import { setEntry } from "./core/self.ts";

setEntry(import.meta.url); // berth re-runs this module (or its bundle) for the modes below
if (Deno.args[0] === "__init") {
  const { init } = await import("./core/runtime/init.ts");
  await init(Deno.args.slice(1));
} else if (Deno.args[0] === "__monitor") {
  const { monitor } = await import("./core/store/supervisor.ts");
  await monitor(Deno.args.slice(1));
  Deno.exit(0);
} else {
  const { main } = await import("./core/cli/main.ts");
  Deno.exit(await main(Deno.args));
}
