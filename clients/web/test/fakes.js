// Small fakes for the kit's tests: a DOM element and document, a clock, the gateway
// (fetch), EventSource, hls.js and the THEOlive player. Each records what it was asked.

export class FakeElement extends EventTarget {
  constructor(tagName) {
    super();
    this.tagName = tagName.toUpperCase();
    this.children = [];
    this.parent = null;
    this.attributes = {};
    this.style = {};
    this.src = "";
    this.error = null;
  }
  append(child) {
    child.parent = this;
    this.children.push(child);
  }
  remove() {
    if (this.parent) this.parent.children = this.parent.children.filter((c) => c !== this);
    this.parent = null;
  }
  removeAttribute(name) {
    delete this.attributes[name];
    if (name === "src") this.src = "";
  }
  // <video>
  play() {
    this.playing = true;
    return Promise.resolve();
  }
  pause() {
    this.playing = false;
  }
  canPlayType() {
    return this.nativeHls ? "maybe" : "";
  }
}

export const fakeDocument = { createElement: (tag) => new FakeElement(tag) };

/** Timers that run when the test moves the clock on. */
export class FakeClock {
  constructor(now = Date.parse("2026-12-07T10:00:00Z")) {
    this.time = now;
    this.timers = new Map();
    this.next = 1;
  }
  now = () => this.time;
  setTimeout = (callback, ms) => {
    const id = this.next++;
    this.timers.set(id, { at: this.time + ms, callback });
    return id;
  };
  clearTimeout = (id) => {
    this.timers.delete(id);
  };
  /** Move on `ms`, running each timer that falls due (and what it schedules). */
  async advance(ms) {
    const end = this.time + ms;
    for (;;) {
      const due = [...this.timers.entries()]
        .filter(([, t]) => t.at <= end)
        .sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.time = due[1].at;
      due[1].callback();
      await settle();
    }
    this.time = end;
  }
}

/** Let pending promises (fetch answers, their JSON) run. */
export async function settle() {
  for (let i = 0; i < 10; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

/** The gateway: answers from `routes` ("POST /v1/events/E1/play" -> function). */
export class FakeGateway {
  constructor(routes) {
    this.routes = routes;
    this.calls = [];
  }
  fetch = async (url, init = {}) => {
    const { pathname } = new URL(url);
    const method = init.method || "GET";
    const call = { method, path: pathname, headers: init.headers || {}, body: init.body ? JSON.parse(init.body) : null };
    this.calls.push(call);
    const route = this.routes[`${method} ${pathname}`];
    if (!route) return json(404, { code: "not_found" });
    return route(call, this.calls.filter((c) => c.path === pathname).length);
  };
  to(method, path) {
    return this.calls.filter((c) => c.method === method && c.path === path);
  }
}

export function json(status, body, headers = {}) {
  const type = status >= 400 ? "application/problem+json" : "application/json";
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": type, ...headers } });
}

export class FakeEventSource extends EventTarget {
  static instances = [];
  constructor(url) {
    super();
    this.url = url;
    this.readyState = 1;
    FakeEventSource.instances.push(this);
  }
  close() {
    this.readyState = 2;
  }
  send(type, data) {
    this.dispatchEvent(new MessageEvent(type, { data: JSON.stringify(data) }));
  }
}

export class FakeHls {
  static Events = { ERROR: "hlsError" };
  static instances = [];
  static isSupported() {
    return true;
  }
  constructor(config) {
    this.config = config;
    this.sources = [];
    this.handlers = {};
    this.destroyed = false;
    FakeHls.instances.push(this);
  }
  loadSource(url) {
    this.sources.push(url);
  }
  attachMedia(media) {
    this.media = media;
  }
  on(name, handler) {
    this.handlers[name] = handler;
  }
  fail(data) {
    this.handlers[FakeHls.Events.ERROR](FakeHls.Events.ERROR, data);
  }
  destroy() {
    this.destroyed = true;
  }
}

export function fakeTheolive(loadChannel) {
  const players = [];
  class Player {
    constructor(element) {
      this.element = element;
      this.channels = [];
      this.headers = null;
      this.listeners = {};
      this.destroyed = false;
      players.push(this);
    }
    addHeaderProvider(provider) {
      this.headers = provider;
    }
    addEventListener(type, listener) {
      this.listeners[type] = listener;
    }
    loadChannel(channelId) {
      this.channels.push(channelId);
      return loadChannel(channelId);
    }
    destroy() {
      this.destroyed = true;
    }
  }
  return { Player, players };
}
