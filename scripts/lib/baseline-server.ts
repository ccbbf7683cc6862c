// How the bench's baselines (scripts/baseline-*.ts) serve: keep-alive
// timeouts as the real server's, so that connections behave the same; on
// 127.0.0.1 at PORT (default 0); the same `"url":"http://..."` line as the
// real server, so that the bench finds the port; SIGTERM stops it.

import type http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Listens with `server` as `name`; `onStop` runs once it has closed, before the process exits. */
export function serveBaseline(name: string, server: http.Server, onStop: () => void = () => {}): void {
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 70_000;
  server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    console.log(JSON.stringify({ msg: `${name} listening`, url: `http://127.0.0.1:${port}` }));
  });
  process.once('SIGTERM', () => {
    server.close(() => {
      onStop();
      process.exit(0);
    });
    server.closeAllConnections();
  });
}
