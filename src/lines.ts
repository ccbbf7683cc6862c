// Lines of a byte stream (an import's body, an export file) with a cap on
// the length of one line. The lines are split on the raw bytes and each is
// gathered into one growable buffer, so a line past its cap is refused before
// it is ever joined into one string (readline cannot cap a line: one long
// enough ends the process with "Invalid string length"), and the memory held
// is at most about twice the cap however the bytes are cut into chunks (a
// list of the chunks would cost an object per chunk: a line sent one byte at a
// time would take a hundred times its length).

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;
/** The first capacity of the line buffer, which then doubles as a line needs it. */
const FIRST_CAPACITY = 16 * 1024;
/** A line buffer grown past this is let go once its line ends, so that one long line does not keep it. */
const KEPT_CAPACITY = 1024 * 1024;
const EMPTY = Buffer.alloc(0);

/** A line longer than the cap; `lineNumber` counts from 1. */
export class LineTooLongError extends Error {
  readonly code = 'LINE_TOO_LONG';
  constructor(
    readonly lineNumber: number,
    readonly maxLineBytes: number,
  ) {
    super(`line ${lineNumber} is longer than the limit of ${maxLineBytes} bytes`);
    this.name = 'LineTooLongError';
  }
}

/** A line's bytes as text, without the CR of a CRLF ending. */
function decode(bytes: Buffer, start: number, end: number): string {
  // a CR is one byte in UTF-8 and never part of another character
  if (end > start && bytes[end - 1] === CARRIAGE_RETURN) end -= 1;
  return bytes.toString('utf8', start, end);
}

/**
 * The lines of `chunks`, decoded as UTF-8 (bytes that are not UTF-8 become
 * U+FFFD), split on LF with a CRLF ending taken as LF. The last line needs no
 * newline; an empty last line is not one. A line of more than `maxLineBytes`
 * bytes (a CR before its LF counts) throws a LineTooLongError as soon as its
 * bytes pass the cap. An error of `chunks` comes through unchanged.
 */
export async function* splitLines(chunks: AsyncIterable<Buffer>, maxLineBytes: number): AsyncGenerator<string> {
  // the bytes of the line being read, when it began in an earlier chunk
  let line = EMPTY;
  let length = 0;
  let lineNumber = 1;
  const keep = (piece: Buffer) => {
    const needed = length + piece.length;
    if (needed > maxLineBytes) throw new LineTooLongError(lineNumber, maxLineBytes);
    if (needed > line.length) {
      let capacity = Math.max(line.length * 2, FIRST_CAPACITY);
      while (capacity < needed) capacity *= 2;
      const grown = Buffer.allocUnsafe(Math.min(capacity, maxLineBytes));
      line.copy(grown, 0, 0, length);
      line = grown;
    }
    piece.copy(line, length);
    length = needed;
  };
  const ended = () => {
    length = 0;
    lineNumber += 1;
    if (line.length > KEPT_CAPACITY) line = EMPTY;
  };
  for await (const chunk of chunks) {
    let start = 0;
    for (let end = chunk.indexOf(NEWLINE); end !== -1; end = chunk.indexOf(NEWLINE, start)) {
      if (length === 0) {
        // the whole line is in this chunk: decoded from it, never copied
        if (end - start > maxLineBytes) throw new LineTooLongError(lineNumber, maxLineBytes);
        const text = decode(chunk, start, end);
        start = end + 1;
        ended();
        yield text;
      } else {
        keep(chunk.subarray(start, end));
        const text = decode(line, 0, length);
        start = end + 1;
        ended();
        yield text;
      }
    }
    // the start of a line that goes on in the next chunk, copied so that the chunk is not kept
    if (start < chunk.length) keep(chunk.subarray(start));
  }
  if (length > 0) yield decode(line, 0, length);
}
