/**
 * Advisory file locks (flock) between berth processes sharing one store.
 *
 * @module
 */

/** A held lock; release it with `close()` or `using`. */
export interface HeldLock extends Disposable {
  close(): void;
}

/**
 * Opens (creating) `path` and takes a shared or exclusive flock on it, waiting as needed. A free
 * lock is taken synchronously (no trip through Deno's blocking pool: the run path takes several);
 * a held one is waited for without blocking the event loop (the holder may be this process).
 */
export async function acquireLock(
  path: string,
  options: { exclusive: boolean },
): Promise<HeldLock> {
  const file = Deno.openSync(path, { read: true, write: true, create: true, mode: 0o600 });
  try {
    if (!file.tryLockSync(options.exclusive)) await file.lock(options.exclusive);
  } catch (e) {
    file.close();
    throw e;
  }
  const close = () => file.close();
  return { close, [Symbol.dispose]: close };
}
