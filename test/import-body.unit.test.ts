// The lines of an import's body (and of an export file read by the CLI):
// where they split, the caps on a line and on the whole body, and the memory
// one line holds when it comes one byte at a time.

import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { readBodyLines } from '../src/http/import-body.js';
import { HttpError } from '../src/http/errors.js';
import { LineTooLongError, splitLines } from '../src/lines.js';

/** Chunks as a stream gives them: one at a time, asynchronously. */
async function* streamOf(chunks: Iterable<Buffer>): AsyncGenerator<Buffer> {
  for (const chunk of chunks) yield await Promise.resolve(chunk);
}

function chunksOf(...chunks: (string | Buffer)[]): AsyncGenerator<Buffer> {
  return streamOf(chunks.map((chunk) => (typeof chunk === 'string' ? Buffer.from(chunk) : chunk)));
}

async function collect(lines: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const line of lines) out.push(line);
  return out;
}

const caps = { maxBytes: 1024, maxLineBytes: 10, idleTimeoutMs: 0 };

async function refusal(lines: AsyncIterable<string>): Promise<HttpError> {
  const error = await collect(lines).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(HttpError);
  return error as HttpError;
}

describe('splitLines', () => {
  it('splits on LF, takes CRLF as LF and keeps empty lines', async () => {
    expect(await collect(splitLines(chunksOf('a\r\nb\n\n\r\nc\n'), 10))).toEqual(['a', 'b', '', '', 'c']);
  });

  it('joins a line and a CRLF cut across chunks, one byte at a time too', async () => {
    expect(await collect(splitLines(chunksOf('ab', 'cd\r', '\nef', '', 'g\n'), 10))).toEqual(['abcd', 'efg']);
    const text = 'first line\r\nsecond\n\nthird';
    expect(await collect(splitLines(chunksOf(...text.split('')), 20))).toEqual(['first line', 'second', '', 'third']);
  });

  it('gives a last line without its newline, and no empty line after a final newline', async () => {
    expect(await collect(splitLines(chunksOf('a\nb'), 10))).toEqual(['a', 'b']);
    expect(await collect(splitLines(chunksOf('a\n', 'b', 'c'), 10))).toEqual(['a', 'bc']);
    expect(await collect(splitLines(chunksOf('a\n'), 10))).toEqual(['a']);
    expect(await collect(splitLines(chunksOf(), 10))).toEqual([]);
  });

  it('decodes a character cut across chunks', async () => {
    const bytes = Buffer.from('é€\n');
    expect(await collect(splitLines(chunksOf(...[...bytes].map((b) => Buffer.from([b]))), 10))).toEqual(['é€']);
  });

  it('takes a line of exactly the cap and refuses one byte more, in one chunk or many', async () => {
    const atCap = 'x'.repeat(10);
    expect(await collect(splitLines(chunksOf(`${atCap}\n`, 'y\n'), 10))).toEqual([atCap, 'y']);
    expect(await collect(splitLines(chunksOf('xxxx', 'xxxxxx', '\n'), 10))).toEqual([atCap]);
    expect(await collect(splitLines(chunksOf(atCap), 10))).toEqual([atCap]);
    for (const chunks of [[`ok\n${atCap}x\n`], ['ok\n', 'xxxxx', 'xxxxxx\n'], ['ok\nxxxxxxxxxxx']]) {
      const error = await collect(splitLines(chunksOf(...chunks), 10)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LineTooLongError);
      expect(error).toMatchObject({ lineNumber: 2, maxLineBytes: 10 });
    }
  });

  it('counts the CR of a CRLF within the cap', async () => {
    expect(await collect(splitLines(chunksOf(`${'x'.repeat(9)}\r\n`), 10))).toEqual(['x'.repeat(9)]);
    await expect(collect(splitLines(chunksOf(`${'x'.repeat(10)}\r\n`), 10))).rejects.toBeInstanceOf(LineTooLongError);
  });

  it('refuses a line past the cap before its newline arrives', async () => {
    let sent = 0;
    function* long(): Generator<Buffer> {
      for (let i = 0; i < 1000; i += 1) {
        sent += 1;
        yield Buffer.from('x');
      }
      yield Buffer.from('\n');
    }
    await expect(collect(splitLines(streamOf(long()), 100))).rejects.toBeInstanceOf(LineTooLongError);
    expect(sent).toBe(101);
  });

  it('gives an error of the chunks through unchanged', async () => {
    const cut = new Error('cut');
    function* failing(): Generator<Buffer> {
      yield Buffer.from('a\nb');
      throw cut;
    }
    const seen: string[] = [];
    const error = await (async () => {
      for await (const line of splitLines(streamOf(failing()), 10)) seen.push(line);
    })().catch((e: unknown) => e);
    expect(error).toBe(cut);
    expect(seen).toEqual(['a']);
  });
});

/** The memory in use (JS heap and buffers) once all garbage is collected. */
function held(): number {
  v8.setFlagsFromString('--expose_gc');
  const gc = vm.runInNewContext('gc') as () => void;
  gc();
  gc();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

describe('readBodyLines', () => {
  it('answers 413 IMPORT_LINE_TOO_LONG for a line one byte past MAX_IMPORT_LINE_BYTES, naming the line', async () => {
    expect(await collect(readBodyLines(chunksOf('a\n', 'x'.repeat(10), '\n'), caps))).toEqual(['a', 'x'.repeat(10)]);
    const error = await refusal(readBodyLines(chunksOf('a\n', 'x'.repeat(11), '\n'), caps));
    expect(error).toMatchObject({ status: 413, code: 'IMPORT_LINE_TOO_LONG' });
    expect(error.message).toContain('Line 2 ');
  });

  it('answers 413 IMPORT_TOO_LARGE past MAX_IMPORT_BYTES, counting every byte', async () => {
    const small = { ...caps, maxBytes: 8 };
    expect(await collect(readBodyLines(chunksOf('abc\n', 'de\r\n'), small))).toEqual(['abc', 'de']);
    const error = await refusal(readBodyLines(chunksOf('abc\n', 'de\r\n', '\n'), small));
    expect(error).toMatchObject({ status: 413, code: 'IMPORT_TOO_LARGE' });
  });

  it('answers 400 MALFORMED_BODY for a body cut off, and lets an HttpError of the body through', async () => {
    function* cut(): Generator<Buffer> {
      yield Buffer.from('a\n');
      throw new Error('the request body was cut off');
    }
    expect(await refusal(readBodyLines(streamOf(cut()), caps))).toMatchObject({ status: 400, code: 'MALFORMED_BODY' });
    const stalled = new HttpError(408, 'stalled', 'REQUEST_TIMEOUT');
    function* stalling(): Generator<Buffer> {
      yield Buffer.from('a');
      throw stalled;
    }
    expect(await refusal(readBodyLines(streamOf(stalling()), caps))).toBe(stalled);
  });

  it('holds about one line of memory for a line sent one byte per chunk', async () => {
    const lineBytes = 1_000_000;
    let before = 0;
    let during = 0;
    // one million chunks of one byte each, as a chunked upload may send them
    function* oneByteAtATime(): Generator<Buffer> {
      before = held();
      for (let i = 0; i < lineBytes; i += 1) yield Buffer.from([0x61]);
      // the whole line read but its newline not yet sent: what the reader holds now is the line
      during = held();
      yield Buffer.from('\n');
    }
    const lines = await collect(
      readBodyLines(streamOf(oneByteAtATime()), {
        maxBytes: 2 * lineBytes,
        maxLineBytes: 4 * 1024 * 1024,
        idleTimeoutMs: 0,
      }),
    );
    expect(lines.map((l) => l.length)).toEqual([lineBytes]);
    // a chunk list would hold an object per byte (well over 100 MB); one buffer holds the line (1 MiB)
    expect(during - before).toBeLessThan(30 * 1024 * 1024);
  });

  it('lets go of the buffer of a long line once the line ends', async () => {
    const longBytes = 8 * 1024 * 1024;
    let before = 0;
    let after = 0;
    function* body(): Generator<Buffer> {
      before = held();
      // a long line cut in two, so that it is gathered in the line buffer, then a short one
      // (so that no variable still holds the long line's text)
      yield Buffer.alloc(100, 'y');
      yield Buffer.concat([Buffer.alloc(longBytes - 100, 'y'), Buffer.from('\na\nsh')]);
      yield Buffer.from('o');
      // a short line under way (the long chunk is no longer in hand): only its own bytes are held
      after = held();
      yield Buffer.from('rt\n');
    }
    const lengths: number[] = [];
    for await (const line of readBodyLines(streamOf(body()), {
      maxBytes: 2 * longBytes,
      maxLineBytes: longBytes,
      idleTimeoutMs: 0,
    })) {
      lengths.push(line.length);
    }
    expect(lengths).toEqual([longBytes, 1, 5]);
    // the long line's buffer (8 MiB) is let go; a short line's is 16 KiB
    expect(after - before).toBeLessThan(2 * 1024 * 1024);
  });
});
