// The page's own event-stream client: a WHATWG event-stream parser and a fetch-based
// reader that resumes after a dropped connection with `Last-Event-ID`, applies every
// numbered event exactly once (an id at or below the last applied one is ignored),
// and stops for good at `done` — where EventSource would reconnect forever.

/** Incremental WHATWG event-stream parser. Feed it decoded text in any split. */
export class EventStreamParser {
  constructor(onEvent, onRetry = () => {}) {
    this.onEvent = onEvent;
    this.onRetry = onRetry;
    this.buf = '';
    this.started = false;
    this.data = [];
    this.type = '';
    this.id = null; // the id field of the event being read, if it had one
    this.lastEventId = '';
  }

  feed(text) {
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    this.buf += text;
    let start = 0;
    const b = this.buf;
    for (;;) {
      let i = start;
      while (i < b.length && b[i] !== '\n' && b[i] !== '\r') i++;
      if (i >= b.length) break;
      if (b[i] === '\r' && i + 1 >= b.length) break; // a CR at the end may be half of CRLF
      this.line(b.slice(start, i));
      start = b[i] === '\r' && b[i + 1] === '\n' ? i + 2 : i + 1;
    }
    this.buf = b.slice(start);
  }

  /** The stream ended: a trailing lone CR still ends its line; an unterminated event is dropped. */
  end() {
    if (this.buf.endsWith('\r')) this.line(this.buf.slice(0, -1));
    this.buf = '';
    this.data = [];
    this.type = '';
    this.id = null;
  }

  line(l) {
    if (l === '') {
      this.dispatch();
      return;
    }
    if (l[0] === ':') return;
    const colon = l.indexOf(':');
    let field = l;
    let value = '';
    if (colon >= 0) {
      field = l.slice(0, colon);
      value = l.slice(colon + 1);
      if (value[0] === ' ') value = value.slice(1);
    }
    switch (field) {
      case 'data':
        this.data.push(value);
        break;
      case 'event':
        this.type = value;
        break;
      case 'id':
        if (!value.includes('\u0000')) {
          this.lastEventId = value;
          this.id = value;
        }
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) this.onRetry(parseInt(value, 10));
        break;
      default:
        break;
    }
  }

  dispatch() {
    const data = this.data;
    const type = this.type || 'message';
    const id = this.id;
    this.data = [];
    this.type = '';
    this.id = null;
    if (data.length === 0) return;
    this.onEvent({ type, data: data.join('\n'), id, lastEventId: this.lastEventId });
  }
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

/**
 * Follows a run's event stream until its `done` event.
 *
 * options: lastEventId (resume after this id; 0 or null = from the start),
 * onEvent({type, data, id}) for each numbered event applied once, in order;
 * onConnection(data) for the unnumbered `connection` event; onState(state, info)
 * with 'connecting' | 'open' | 'reconnecting' | 'gone' | 'closed'.
 * Returns { close(), get lastEventId() }.
 */
export function followStream(url, options) {
  const { onEvent, onConnection = () => {}, onState = () => {} } = options;
  let last = Number(options.lastEventId) || 0;
  let retryMs = 2000;
  let closed = false;
  let controller = null;
  let wake = null;

  const onOnline = () => wake?.abort();
  globalThis.addEventListener?.('online', onOnline);

  const close = () => {
    if (closed) return;
    closed = true;
    controller?.abort();
    wake?.abort();
    globalThis.removeEventListener?.('online', onOnline);
    onState('closed');
  };

  async function readOnce() {
    controller = new AbortController();
    const headers = { Accept: 'text/event-stream' };
    if (last > 0) headers['Last-Event-ID'] = String(last);
    const res = await fetch(url, { headers, cache: 'no-store', signal: controller.signal });
    if (res.status === 404) {
      let message = 'This run is no longer on the server.';
      try {
        message = (await res.json()).error.message || message;
      } catch {
        /* keep the default sentence */
      }
      return { gone: message };
    }
    if (!res.ok || !res.body) return { progressed: false, status: res.status };
    onState('open');
    let progressed = false;
    let finished = false;
    const parser = new EventStreamParser(
      (ev) => {
        if (finished || closed) return;
        if (ev.type === 'connection') {
          try {
            onConnection(JSON.parse(ev.data));
          } catch {
            /* a malformed hello changes nothing */
          }
          return;
        }
        if (ev.id === null) return; // only logged (numbered) events carry run state
        const id = Number(ev.id);
        if (!Number.isSafeInteger(id) || id <= last) return; // already applied
        let data;
        try {
          data = JSON.parse(ev.data);
        } catch {
          return;
        }
        last = id;
        progressed = true;
        onEvent({ type: ev.type, data, id });
        if (ev.type === 'done') finished = true;
      },
      (ms) => {
        retryMs = ms;
      },
    );
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      while (!finished && !closed) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.feed(value);
      }
    } finally {
      parser.end();
      if (finished || closed) controller.abort();
    }
    return { progressed, finished };
  }

  (async () => {
    let failures = 0;
    while (!closed) {
      onState(failures === 0 ? 'connecting' : 'reconnecting', { attempt: failures, lastEventId: last });
      let result;
      try {
        result = await readOnce();
      } catch {
        result = { progressed: false };
      }
      if (closed) return;
      if (result.gone) {
        closed = true;
        globalThis.removeEventListener?.('online', onOnline);
        onState('gone', { message: result.gone });
        return;
      }
      if (result.finished) {
        close();
        return;
      }
      // The connection ended before `done`: resume from the last applied id.
      failures = result.progressed ? 1 : failures + 1;
      onState('reconnecting', { attempt: failures, lastEventId: last });
      const delay = failures <= 1 ? 250 : Math.min(retryMs * 2 ** (failures - 2), 15000);
      wake = new AbortController();
      await sleep(delay, wake.signal);
    }
  })();

  return {
    close,
    get lastEventId() {
      return last;
    },
  };
}
