/**
 * The step runner shared by `runContainer` and `execInContainer`: named steps, each with its
 * undo, run in order and undone in reverse when the body ends (or fails half way); and the
 * breakdown of their milliseconds.
 *
 * @module
 */

/** Records that step `name` is done, with what undoes it. */
export type StepFn = (name: string, undo?: () => void | Promise<void>) => void;

const epoch = () => performance.timeOrigin + performance.now();

/**
 * Runs `body` with a `step` recorder and `marks` (epoch ms by name, from `begin`), then every
 * recorded undo in reverse (each timed as `undo.NAME`; `cleaned` at the end). Throws the body's
 * failure, else the first undo's.
 */
export async function runSteps<T>(
  body: (step: StepFn, marks: Record<string, number>) => Promise<T>,
): Promise<{ value: T; marks: Record<string, number> }> {
  const marks: Record<string, number> = { begin: epoch() };
  const done: { name: string; undo?: () => void | Promise<void> }[] = [];
  const step: StepFn = (name, undo) => {
    done.push({ name, undo });
    marks[name] = epoch();
  };
  let value: T | undefined;
  let failure: unknown;
  try {
    value = await body(step, marks);
  } catch (e) {
    failure = e;
  }
  for (const s of done.reverse()) {
    try {
      await s.undo?.();
    } catch (e) {
      failure ??= e;
    }
    marks[`undo.${s.name}`] = epoch();
  }
  marks.cleaned = epoch();
  if (failure !== undefined) throw failure;
  return { value: value as T, marks };
}

/** Records the current time as mark `name`. */
export function mark(marks: Record<string, number>, name: string): void {
  marks[name] = epoch();
}

/** Milliseconds per phase (`[name, from mark, to mark]`); NaN where a mark is missing. */
export function breakdown(
  m: Record<string, number>,
  phases: readonly (readonly [string, string, string])[],
): Record<string, number> {
  return Object.fromEntries(
    phases.map(([name, a, b]) => [
      name,
      m[a] !== undefined && m[b] !== undefined ? +(m[b] - m[a]).toFixed(2) : NaN,
    ]),
  );
}
