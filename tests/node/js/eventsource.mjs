// A tiny EventSource for Node 20 (which has fetch but no EventSource), enough for the
// seed's watchBalanceChanges: onmessage / onerror / onopen, addEventListener, close(),
// lastEventId, and reconnecting after `retry` with Last-Event-ID.
export class EventSource {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSED = 2;

  constructor(url) {
    this.url = String(url);
    this.readyState = EventSource.CONNECTING;
    this.onopen = null;
    this.onmessage = null;
    this.onerror = null;
    this.lastEventId = "";
    this._listeners = {};
    this._retry = 2000;
    this._abort = new AbortController();
    this._connect();
  }

  addEventListener(type, fn) {
    (this._listeners[type] ||= []).push(fn);
  }

  removeEventListener(type, fn) {
    this._listeners[type] = (this._listeners[type] || []).filter((f) => f !== fn);
  }

  close() {
    this.readyState = EventSource.CLOSED;
    this._abort.abort();
  }

  _dispatch(type, event) {
    const handler = this["on" + type];
    if (typeof handler === "function") handler.call(this, event);
    for (const fn of this._listeners[type] || []) fn.call(this, event);
  }

  async _connect() {
    const headers = { accept: "text/event-stream" };
    if (this.lastEventId) headers["last-event-id"] = this.lastEventId;
    try {
      const response = await fetch(this.url, { headers, signal: this._abort.signal });
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      this.readyState = EventSource.OPEN;
      this._dispatch("open", { type: "open" });
      const decoder = new TextDecoder();
      let buffer = "";
      let data = [];
      let type = "message";
      for await (const chunk of response.body) {
        buffer += decoder.decode(chunk, { stream: true });
        let newline;
        while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
          if (line === "") {
            if (data.length) {
              this._dispatch(type, { type, data: data.join("\n"), lastEventId: this.lastEventId });
            }
            data = [];
            type = "message";
            continue;
          }
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? "" : line.slice(colon + 1);
          if (value.startsWith(" ")) value = value.slice(1);
          if (field === "data") data.push(value);
          else if (field === "event") type = value || "message";
          else if (field === "id") this.lastEventId = value;
          else if (field === "retry" && /^\d+$/.test(value)) this._retry = Number(value);
        }
      }
    } catch (error) {
      if (this.readyState === EventSource.CLOSED) return;
      this._dispatch("error", { type: "error", error });
    }
    if (this.readyState !== EventSource.CLOSED) {
      this.readyState = EventSource.CONNECTING;
      setTimeout(() => this._connect(), this._retry);
    }
  }
}

globalThis.EventSource ??= EventSource;
