/**
 * A readable/writable pair around a synchronous, pull-driven decoder ("engine"), with real
 * backpressure inside one input chunk: the engine yields bounded output pieces, and no piece is
 * produced while the readable side's queue is full. So memory stays bounded even for a
 * decompression bomb that a consumer reads slowly.
 *
 * @module
 */

/** A synchronous streaming decoder driven by {@linkcode engineStream}. */
export interface Engine {
  /** Supplies the next input chunk; called only after `read()` returned `null`. */
  write(chunk: Uint8Array): void;
  /** The next output piece from the current input, or `null` once that input is used up. */
  read(): Uint8Array | null;
  /** End of input: throws when the input stopped in the middle of something (truncation). */
  end(): void;
  /** Releases the engine's memory; idempotent. Called on success, error and cancel. */
  free(): void;
}

/**
 * Wraps an engine (created, possibly asynchronously, when the stream starts) as a
 * `TransformStream`-shaped pair. Errors thrown by the engine pass through `mapError` and then
 * error both sides.
 *
 * The result is a plain `{ readable, writable }` object: it works with `pipeThrough` and
 * everything else that takes a transform, but is not an `instanceof TransformStream`.
 */
export function engineStream(
  open: () => Engine | Promise<Engine>,
  mapError: (err: unknown) => unknown,
): TransformStream<Uint8Array, Uint8Array> {
  let engine: Engine | undefined;
  let readableController!: ReadableStreamDefaultController<Uint8Array>;
  let writableController!: WritableStreamDefaultController;
  let wakeUp: (() => void) | undefined;
  let failure: { reason: unknown } | undefined;

  const free = () => {
    const e = engine;
    engine = undefined;
    e?.free();
  };
  /** Errors both sides once; returns the reason to rethrow. */
  const fail = (reason: unknown): unknown => {
    if (failure) return failure.reason;
    failure = { reason };
    free();
    try {
      readableController.error(reason);
    } catch { /* already closed */ }
    try {
      writableController.error(reason);
    } catch { /* already errored */ }
    const w = wakeUp;
    wakeUp = undefined;
    w?.();
    return reason;
  };
  /** Produces output from the current input until it is used up, honouring backpressure. */
  const drain = async (): Promise<void> => {
    while (true) {
      if (failure) throw failure.reason;
      let piece: Uint8Array | null;
      try {
        piece = engine!.read();
      } catch (err) {
        throw fail(mapError(err));
      }
      if (piece === null) return;
      if (piece.byteLength > 0) readableController.enqueue(piece);
      if ((readableController.desiredSize ?? 0) <= 0) {
        await new Promise<void>((resolve) => wakeUp = resolve);
      }
    }
  };

  const readable = new ReadableStream<Uint8Array>({
    start(controller) {
      readableController = controller;
    },
    pull() {
      const w = wakeUp;
      wakeUp = undefined;
      w?.();
    },
    cancel(reason) {
      fail(reason);
    },
  }, { highWaterMark: 1 });

  const writable = new WritableStream<Uint8Array>({
    async start(controller) {
      writableController = controller;
      try {
        engine = await open();
      } catch (err) {
        throw fail(err);
      }
    },
    async write(chunk) {
      if (failure) throw failure.reason;
      if (!(chunk instanceof Uint8Array)) {
        throw fail(new TypeError("Decompressor input chunks must be Uint8Array"));
      }
      if (chunk.byteLength === 0) return;
      try {
        engine!.write(chunk);
      } catch (err) {
        throw fail(mapError(err));
      }
      await drain();
    },
    close() {
      if (failure) throw failure.reason;
      try {
        engine!.end();
      } catch (err) {
        throw fail(mapError(err));
      }
      free();
      readableController.close();
    },
    abort(reason) {
      fail(reason);
    },
  }, { highWaterMark: 1 });

  return { readable, writable };
}
