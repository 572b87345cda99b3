// Follows `GET /events` with fetch(), not EventSource: the feed needs the admin token, and an
// EventSource cannot send an Authorization header (a token in the URL would end up in logs and
// history). Every (re)connection starts with `hello`, which the server writes after it subscribed
// this stream: re-reading everything then misses nothing. That is the resync.

export type Connection = 'connecting' | 'live' | 'offline' | 'locked';

export interface StreamHandlers {
  /** The admin token typed into the page ('' when none). */
  token(): string;
  /** Re-read everything: (re)connected, or the server resubscribed to its notifications. */
  resync(): void;
  /** These plugins changed (an empty list: some plugin on another node, not known which). */
  changed(plugins: string[]): void;
  connection(state: Connection): void;
}

/** One server-sent event: its name and data lines. */
function dispatch(block: string, h: StreamHandlers, hello: () => void): void {
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue; // a comment: the server's keep-alive
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (event === 'hello') hello();
  else if (event === 'resync') h.resync();
  else if (event === 'change') {
    let plugins: string[] = [];
    try {
      const d = JSON.parse(data.join('\n')) as { plugins?: unknown };
      if (Array.isArray(d.plugins)) plugins = d.plugins.filter((x): x is string => typeof x === 'string');
    } catch {
      // a malformed event is still a reason to look again
    }
    h.changed(plugins);
  }
}

/**
 * Keeps one stream open while a token is there. Returns `restart`, to call when the token
 * changes: the current stream is dropped and a new one opened with the new token.
 */
export function followEvents(h: StreamHandlers): { restart(): void } {
  let delay = 1000;
  let current: AbortController | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const retry = (state: Connection) => {
    h.connection(state);
    timer = setTimeout(open, delay);
    delay = Math.min(delay * 2, 5000);
  };

  const read = async (token: string, ac: AbortController) => {
    const res = await fetch('/events', { headers: { authorization: `Bearer ${token}` }, cache: 'no-store', signal: ac.signal });
    if (res.status === 401 || res.status === 403) {
      // a wrong or missing token: wait for another one rather than hammer the server
      h.connection('locked');
      return;
    }
    if (!res.ok || res.body === null) return retry('offline'); // a full feed (503) or a server stopping: back off
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n?/g, '\n');
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        dispatch(block, h, () => {
          delay = 1000;
          h.connection('live');
          h.resync();
        });
      }
    }
    // the server ended the stream (its age limit, or a shutdown): reconnect, the next hello resyncs
    if (!ac.signal.aborted) retry('connecting');
  };

  function open(): void {
    clearTimeout(timer);
    current?.abort();
    const token = h.token();
    if (token === '') {
      h.connection('locked');
      return;
    }
    const ac = new AbortController();
    current = ac;
    read(token, ac).catch(() => {
      if (!ac.signal.aborted) retry('offline');
    });
  }

  open();
  return {
    restart() {
      delay = 1000;
      open();
    },
  };
}
