// Follows `GET /events`. Every (re)connection starts with `hello`, which the server writes after
// it subscribed this stream: re-reading everything then misses nothing. That is the resync.

export type Connection = 'connecting' | 'live' | 'offline';

export interface StreamHandlers {
  /** Re-read everything: (re)connected, or the server resubscribed to its notifications. */
  resync(): void;
  /** These plugins changed (an empty list: some plugin on another node, not known which). */
  changed(plugins: string[]): void;
  connection(state: Connection): void;
}

export function followEvents(h: StreamHandlers): void {
  let delay = 1000;
  const open = () => {
    const es = new EventSource('/events');
    es.addEventListener('hello', () => {
      delay = 1000;
      h.connection('live');
      h.resync();
    });
    es.addEventListener('resync', () => h.resync());
    es.addEventListener('change', (ev) => {
      let plugins: string[] = [];
      try {
        const d = JSON.parse((ev as MessageEvent<string>).data) as { plugins?: unknown };
        if (Array.isArray(d.plugins)) plugins = d.plugins.filter((x): x is string => typeof x === 'string');
      } catch {
        // a malformed event is still a reason to look again
      }
      h.changed(plugins);
    });
    es.addEventListener('error', () => {
      if (es.readyState !== EventSource.CLOSED) {
        // the browser reconnects by itself (after the server's `retry`)
        h.connection('connecting');
        return;
      }
      // Refused with an HTTP error (a server stopping or starting answers 503): the browser
      // gives up on this EventSource, so open a new one, backing off up to 5 s.
      h.connection('offline');
      es.close();
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 5000);
    });
  };
  open();
}
