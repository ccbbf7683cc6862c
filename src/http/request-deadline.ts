// REQUEST_TIMEOUT_MS for request bodies. Node's own requestTimeout covers the
// whole upload of every request, so it would cut off an import of a large
// export however steadily it arrives. The server leaves Node only the
// headers' deadline, and this check gives every request with a body the same
// deadline for its upload, but for the import route, which lets the upload
// take as long as it needs and times out a wait for the next chunk instead
// (see import-body.ts).

import type { IncomingMessage, ServerResponse } from 'node:http';

export interface RequestDeadline {
  /** Starts the deadline of a request that has a body. */
  track(req: IncomingMessage, res: ServerResponse): void;
  /** Takes a request off the deadline: its route times the upload itself. */
  exempt(req: IncomingMessage): void;
  /** Answers 408 to every request whose body is not in after its deadline, and cuts its connection. */
  sweep(now: number): void;
}

const TIMED_OUT = JSON.stringify({
  error: 'The request was not received in time (REQUEST_TIMEOUT_MS): its body arrived too slowly.',
  code: 'REQUEST_TIMEOUT',
});

const hasBody = (req: IncomingMessage) =>
  req.headers['transfer-encoding'] !== undefined ||
  (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');

export function createRequestDeadline(timeoutMs: number): RequestDeadline {
  const uploading = new Map<IncomingMessage, { res: ServerResponse; started: number }>();
  return {
    track(req, res) {
      if (timeoutMs === 0 || req.complete || !hasBody(req)) return;
      uploading.set(req, { res, started: Date.now() });
      // an answer given before the body is in does not end the deadline: Node
      // still reads the rest of the body on that connection
      // (a request closes once its body is read to the end, or its connection closes)
      req.once('close', () => uploading.delete(req));
    },
    exempt(req) {
      uploading.delete(req);
    },
    sweep(now) {
      for (const [req, { res, started }] of uploading) {
        if (req.complete) {
          uploading.delete(req);
          continue;
        }
        if (now - started < timeoutMs) continue;
        uploading.delete(req);
        if (res.headersSent) {
          // answered already, and the body still trickles in: cut the connection
          req.socket.destroy();
          continue;
        }
        res.writeHead(408, {
          'Content-Type': 'application/json; charset=utf-8',
          'Content-Length': Buffer.byteLength(TIMED_OUT),
          'X-Content-Type-Options': 'nosniff',
          Connection: 'close',
        });
        res.end(TIMED_OUT);
        // the rest of the body is not waited for
        res.once('finish', () => req.socket.destroy());
        if (res.writableFinished) req.socket.destroy();
      }
    },
  };
}
