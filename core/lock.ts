/**
 * Advisory file locks (flock) between berth processes sharing one store.
 *
 * @module
 */

/** A held lock; release it with `close()` or `using`. */
export interface HeldLock extends Disposable {
  close(): void;
}

/** Opens (creating) `path` and takes a shared or exclusive flock on it, waiting as needed. */
export async function acquireLock(
  path: string,
  options: { exclusive: boolean },
): Promise<HeldLock> {
  const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
  try {
    await file.lock(options.exclusive);
  } catch (e) {
    file.close();
    throw e;
  }
  const close = () => file.close();
  return { close, [Symbol.dispose]: close };
}
