// Waiting in tests: for the condition a test checks, never for a fixed time.

/**
 * Polls `check` every `everyMs` until it gives a truthy value, and returns
 * that value; throws after `timeoutMs`, naming what it waited for (and
 * `detail()`, when given, to tell what went on meanwhile).
 */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  timeoutMs = 15_000,
  { everyMs = 20, detail }: { everyMs?: number; detail?: () => string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${detail ? `; ${detail()}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
