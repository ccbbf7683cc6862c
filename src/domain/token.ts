// Session tokens that come from elsewhere (a create that names its token, an
// automatic create on a push, an import) must be UUIDs in their canonical form.

/** The canonical 36-character form of a UUID, any version; hex digits in either case. */
export const UUID_PATTERN = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

export const UUID_FORM = 'a UUID in its canonical form (8-4-4-4-12 hex digits)';

export function isUuidToken(value: unknown): value is string {
  return typeof value === 'string' && UUID_PATTERN.test(value);
}
