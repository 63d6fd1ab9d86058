/**
 * A loopback HTTP/1.1 server written on raw TCP (127.0.0.1 only) that misbehaves on purpose, for the
 * download tests: it can stall before its headers, stall in the middle of a body, or send more
 * bytes than its Content-Length announces. Each path has a plan: request k of that path follows
 * `plan[k]` (the last entry repeats). `close()` ends every connection, so tests leak nothing.
 */

/** What the server does with one request. */
export type RawAction =
  /** Read the request, never answer. */
  | { kind: "stall-headers" }
  /** Answer 200/206 with the right Content-Length, send `after` bytes of the body, then stall. */
  | { kind: "stall-body"; after: number }
  /** Announce `Content-Length: announced` but send the whole body, chunked. */
  | { kind: "oversize"; announced: number }
  /** Answer with an HTTP status and no body. */
  | { kind: "status"; status: number }
  /** Serve the file (206 from the Range start when asked), optionally labelled as gzip-encoded
   * (a misconfigured server serving a .gz file with `Content-Encoding: gzip`). */
  | { kind: "ok"; gzipEncoded?: boolean };

/** A running server: its base URL, the requests it saw, and `close()`. */
export interface RawServer {
  base: string;
  requests: { path: string; range: string | null }[];
  close(): Promise<void>;
}

const enc = new TextEncoder();

async function readHead(conn: Deno.Conn): Promise<string | null> {
  const buf = new Uint8Array(8192);
  let text = "";
  while (!text.includes("\r\n\r\n")) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) return null;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  return text;
}

/** Starts a server for `files` (path -> bytes) following `plans` (path -> actions). */
export function rawServer(
  files: Record<string, Uint8Array>,
  plans: Record<string, RawAction[]> = {},
): RawServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const requests: RawServer["requests"] = [];
  const counts = new Map<string, number>();
  const handle = async (conn: Deno.Conn) => {
    const head = await readHead(conn);
    if (head === null) return;
    const path = head.split(" ")[1];
    const range = /\r\nrange: *bytes=(\d+)-/i.exec(head);
    requests.push({ path, range: range ? `bytes=${range[1]}-` : null });
    const k = counts.get(path) ?? 0;
    counts.set(path, k + 1);
    const plan = plans[path] ?? [{ kind: "ok" }];
    const action = plan[Math.min(k, plan.length - 1)];
    const file = files[path];
    const send = (s: string | Uint8Array) =>
      conn.write(typeof s === "string" ? enc.encode(s) : s).catch(() => 0);
    if (action.kind === "stall-headers") return; // keep the connection open, say nothing
    if (action.kind === "status" || !file) {
      const status = action.kind === "status" ? action.status : 404;
      await send(`HTTP/1.1 ${status} Test\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
      conn.close();
      return;
    }
    const start = range ? Number(range[1]) : 0;
    const body = file.subarray(start);
    const status = range ? "206 Partial Content" : "200 OK";
    if (action.kind === "oversize") {
      await send(
        `HTTP/1.1 ${status}\r\ncontent-length: ${action.announced}\r\n` +
          `transfer-encoding: chunked\r\nconnection: close\r\n\r\n`,
      );
      await send(`${body.length.toString(16)}\r\n`);
      await send(body);
      await send("\r\n0\r\n\r\n");
      conn.close();
      return;
    }
    const encoding = action.kind === "ok" && action.gzipEncoded ? "content-encoding: gzip\r\n" : "";
    await send(
      `HTTP/1.1 ${status}\r\ncontent-length: ${body.length}\r\n${encoding}connection: close\r\n\r\n`,
    );
    if (action.kind === "stall-body") {
      await send(body.subarray(0, action.after));
      return; // stall with the connection open
    }
    await send(body);
    conn.close();
  };
  const loop = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      handle(conn); // connections stay in the set: a stalled one is closed by close()
    }
  })().catch(() => {});
  return {
    base: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    requests,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // already closed by the handler
        }
      }
      await loop;
    },
  };
}
