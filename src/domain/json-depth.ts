// How deep a parsed JSON value nests, and how deep a pushed event may: deeper
// JSON would exhaust the stack of every recursive step after parsing
// (stringify, hashing, the report). Pushes and imports apply the same limit.

/** The deepest a request body (for a push, `{type, data}`) may nest. */
export const MAX_BODY_DEPTH = 256;

/**
 * How deep arrays and objects nest in `value`, measured without recursion;
 * stops counting once past MAX_BODY_DEPTH.
 */
export function nestingDepth(value: unknown): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (item === null || typeof item !== 'object') continue;
    deepest = Math.max(deepest, depth + 1);
    if (deepest > MAX_BODY_DEPTH) return deepest;
    for (const child of Object.values(item)) stack.push([child, depth + 1]);
  }
  return deepest;
}
