// @ts-check
/**
 * A player for the ONEPlatform Gateway, in one call:
 *
 *   const player = createPlayer(element, {gateway, eventId, device: "web", getToken});
 *   element.addEventListener("statechange", (e) => show(e.detail));
 *
 * It asks `POST /v1/events/{eventId}/play` (or `/links` for a stream and kind of your
 * choosing) and plays the answer inside `element`: hls.js in a <video> for `hls` (the
 * browser's own HLS where hls.js is missing), an <iframe> for `player`, the THEOlive
 * player for `theolive`. It renews the link at `refreshAfter` and when the media
 * answers 401/403, keeps its viewing session alive (heartbeats) and ends it on stop,
 * tears down when `GET /v1/events/live` says the event closed or was voided (or the
 * session ended elsewhere), and waits its turn when the gateway answers 429 or 503
 * (`Retry-After`; the line's `queue: {position, etaSeconds}` when there is one).
 *
 * Every state change is a DOM event on `element` (`CustomEvent`, `detail` below): a
 * `statechange` with `{state, ...}`, and one named after the state: `requesting`,
 * `waiting`, `playing` (with the `engine`), `refused`, `ended`, `error`, `stopped`;
 * `renewed` after each renewal. No dependency: hls.js and THEOlive come from the page (or the options).
 */

/** @typedef {"web" | "mobile" | "tablet" | "tv" | "app"} Device */
/** @typedef {"idle" | "requesting" | "waiting" | "playing" | "refused" | "ended" | "error" | "stopped"} PlayerState */

/**
 * A minted link, as `POST /play` and `POST /links` answer it (openapi/openapi.json:
 * HlsPlayOut, PlayerPlayOut, TheoLivePlayOut).
 * @typedef {object} LinkAnswer
 * @property {"hls" | "player" | "theolive"} kind
 * @property {string} eventId
 * @property {string} streamName
 * @property {string} [url] `hls`: the playlist; `player`: the iframe's src (absolute)
 * @property {string} [channelId] `theolive`: for loadChannel
 * @property {string} [token] `theolive`: sent as `Authorization: Bearer` by the player
 * @property {string} expiresAt
 * @property {string} refreshAfter
 * @property {string | null} [sessionId] with MAX_STREAMS_PER_USER
 * @property {number | null} [heartbeatEveryS]
 */

/**
 * A refusal (problem+json), with what the kit read from the answer.
 * @typedef {object} Refusal
 * @property {number} status HTTP status (0: the gateway could not be reached)
 * @property {string} code the problem's stable code, e.g. geo_blocked
 * @property {string} detail
 * @property {number | null} retryAfterS from Retry-After
 * @property {{position: number, etaSeconds?: number} | null} queue the line, on a 429
 */

/**
 * @typedef {object} HlsErrorData
 * @property {boolean} fatal
 * @property {string} type
 * @property {string} details
 * @property {{code?: number} | undefined} [response]
 */
/**
 * What the kit uses of hls.js.
 * @typedef {object} HlsInstance
 * @property {(url: string) => void} loadSource
 * @property {(media: HTMLMediaElement) => void} attachMedia
 * @property {(event: string, listener: (name: string, data: HlsErrorData) => void) => void} on
 * @property {() => void} destroy
 */
/**
 * @typedef {{new (config?: object): HlsInstance, isSupported(): boolean, Events: {ERROR: string}}} HlsConstructor
 */
/**
 * What the kit uses of the THEOlive player (@theolive/player).
 * @typedef {object} TheoPlayer
 * @property {(channelId: string) => Promise<unknown>} loadChannel
 * @property {(provider: () => Headers) => void} addHeaderProvider
 * @property {(type: "error", listener: (event: {error?: unknown}) => void) => void} [addEventListener]
 * @property {() => void} destroy
 */
/** @typedef {{Player: new (element: HTMLElement) => TheoPlayer}} TheoLiveNamespace */

/**
 * What the kit needs of its surroundings; the browser's by default (tests give fakes).
 * @typedef {object} Environment
 * @property {typeof fetch} fetch
 * @property {new (url: string) => EventSource} [EventSource]
 * @property {(callback: () => void, ms: number) => unknown} setTimeout
 * @property {(handle: unknown) => void} clearTimeout
 * @property {() => number} now epoch milliseconds
 * @property {Pick<Document, "createElement">} document
 * @property {(src: string) => Promise<void>} loadScript
 */

/**
 * @typedef {object} PlayerOptions
 * @property {string} gateway the gateway's origin, e.g. "https://gateway.example.com"
 * @property {string} eventId
 * @property {Device} [device] the device's ladder of streams (default "web")
 * @property {() => string | Promise<string>} getToken the viewer's JWT, asked before each request
 * @property {boolean} [ull] the page can play THEOlive: ULL steps are tried
 * @property {{streamName: string, kind: "raw" | "player"}} [link] this stream and kind
 *   (`POST /links`) instead of the device's ladder (`POST /play`)
 * @property {string} [redirectUrl]
 * @property {LinkAnswer} [answer] play this answer (minted elsewhere) before asking
 * @property {boolean} [live] follow `GET /v1/events/live` (default true)
 * @property {HlsConstructor | null} [Hls] default: the page's `Hls` (hls.js)
 * @property {TheoLiveNamespace | null} [THEOLive] default: the page's `THEOLive`
 * @property {string} [theoliveScript] where to load THEOLive.js from when the page has none
 * @property {Partial<Environment>} [environment]
 */

export const RENEW_MIN_MS = 1_000;
export const DEFAULT_RETRY_S = 5;
export const LIVE_RETRY_MS = 3_000;
export const THEOLIVE_LICENCE_MESSAGE =
  "The THEOlive player could not reach its licence service (it needs internet access " +
  "to THEOlive's own hosts), so this stream cannot play here. Choose HLS or the iGame " +
  "player instead.";
/** @type {Record<string, string>} */
export const ENDED_MESSAGES = {
  closed: "The event is over: playback stopped.",
  voided: "The event was cancelled: playback stopped.",
  evicted: "Playback stopped: this viewer started watching on another device.",
  ended_by_operator: "Playback stopped by the operator.",
  session_ended: "Playback stopped: the viewing session ended.",
};

/** @returns {Environment} */
function browserEnvironment() {
  return {
    fetch: (...args) => globalThis.fetch(...args),
    EventSource: globalThis.EventSource,
    setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
    clearTimeout: (handle) => globalThis.clearTimeout(/** @type {number} */ (handle)),
    now: () => Date.now(),
    document: globalThis.document,
    loadScript: (src) =>
      new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = src;
        script.onload = () => resolve();
        script.onerror = () => reject(new Error(`${src} did not load`));
        document.head.append(script);
      }),
  };
}

/**
 * Create a player in `element` and start it.
 * @param {HTMLElement} element where the video, iframe or THEOlive player goes
 * @param {PlayerOptions} options
 * @returns {GatewayPlayer}
 */
export function createPlayer(element, options) {
  const player = new GatewayPlayer(element, options);
  player.start();
  return player;
}

/**
 * Seconds from a Retry-After header (delta-seconds or an HTTP date), or null.
 * @param {string | null} value
 * @param {number} now epoch milliseconds
 * @returns {number | null}
 */
export function retryAfterSeconds(value, now) {
  if (!value) return null;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Number(value);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, (at - now) / 1000);
}

/**
 * Whether a THEOlive error is its licence check failing (no route to its hosts).
 * @param {string} message
 */
export function isLicenceFailure(message) {
  return /licen[cs]e/i.test(message) || /failed to fetch|networkerror|load failed/i.test(message);
}

export class GatewayPlayer {
  /** @type {PlayerState} */
  state = "idle";
  /** @type {LinkAnswer | null} the link playing now */
  answer = null;
  /** @type {Refusal | null} the last refusal */
  refusal = null;
  renewals = 0;
  /** @type {HlsInstance | TheoPlayer | HTMLIFrameElement | HTMLVideoElement | null} */
  engine = null;

  /** @type {HTMLElement} */
  #element;
  /** @type {PlayerOptions} */
  #options;
  /** @type {Environment} */
  #env;
  /** @type {HTMLVideoElement | HTMLIFrameElement | HTMLElement | null} */
  #media = null;
  /** @type {HlsInstance | null} */
  #hls = null;
  /** @type {TheoPlayer | null} */
  #theo = null;
  /** @type {string} */
  #theoToken = "";
  /** @type {unknown} */
  #renewTimer = null;
  /** @type {unknown} */
  #retryTimer = null;
  /** @type {unknown} */
  #heartbeatTimer = null;
  /** @type {unknown} */
  #liveTimer = null;
  /** @type {EventSource | null} */
  #live = null;
  #renewing = false;
  #over = false;

  /**
   * @param {HTMLElement} element
   * @param {PlayerOptions} options
   */
  constructor(element, options) {
    this.#element = element;
    this.#options = { device: "web", ull: false, live: true, ...options };
    this.#options.gateway = options.gateway.replace(/\/+$/, "");
    this.#env = { ...browserEnvironment(), ...(options.environment || {}) };
  }

  /** The viewing session the playing link opened, if any. */
  get sessionId() {
    return this.answer && this.answer.sessionId ? this.answer.sessionId : null;
  }

  /** Ask for a link (or play the given answer) and follow the live stream. */
  start() {
    if (this.#options.live) this.#connectLive();
    if (this.#options.answer) {
      this.#play(this.#options.answer);
      return;
    }
    this.#attempt();
  }

  /**
   * Stop playing: the session ends, the live stream closes. `stopped` is emitted.
   * @param {string} [reason] shown to nobody by the kit; passed on in the event
   */
  stop(reason) {
    if (this.#over) return;
    this.#finish(true);
    this.#setState("stopped", { reason: reason || null });
  }

  /**
   * A fresh link for the event playing now, swapped in where the player allows.
   * @param {string} why e.g. "refreshAfter" or "HTTP 403 from the stream"
   */
  async renew(why) {
    if (this.#over || this.#renewing || !this.answer) return;
    this.#renewing = true;
    try {
      const outcome = await this.#ask(this.sessionId);
      if (this.#over) return;
      if ("answer" in outcome) {
        this.renewals += 1;
        this.#swap(outcome.answer);
        this.#emit("renewed", { why, answer: outcome.answer });
        return;
      }
      this.#refused(outcome.refusal, true);
    } finally {
      this.#renewing = false;
    }
  }

  // --- asking -----------------------------------------------------------------------

  async #attempt() {
    if (this.#over) return;
    this.#setState("requesting", { eventId: this.#options.eventId });
    const outcome = await this.#ask(null);
    if (this.#over) return;
    if ("answer" in outcome) this.#play(outcome.answer);
    else this.#refused(outcome.refusal, false);
  }

  /**
   * @param {string | null} sessionId
   * @returns {Promise<{answer: LinkAnswer} | {refusal: Refusal}>}
   */
  async #ask(sessionId) {
    const { gateway, eventId, link, device, ull, redirectUrl } = this.#options;
    /** @type {Record<string, unknown>} */
    const body = link ? { streamName: link.streamName, kind: link.kind } : { device, ull };
    if (redirectUrl) body.redirectUrl = redirectUrl;
    if (sessionId) body.sessionId = sessionId;
    const path = link ? "links" : "play";
    let response;
    try {
      const token = await this.#options.getToken();
      response = await this.#env.fetch(
        `${gateway}/v1/events/${encodeURIComponent(eventId)}/${path}`,
        {
          method: "POST",
          headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
          body: JSON.stringify(body),
        },
      );
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      return {
        refusal: { status: 0, code: "network_error", detail, retryAfterS: DEFAULT_RETRY_S, queue: null },
      };
    }
    const json = await response.json().catch(() => ({}));
    if (response.ok) return { answer: /** @type {LinkAnswer} */ (json) };
    return {
      refusal: {
        status: response.status,
        code: typeof json.code === "string" ? json.code : `http_${response.status}`,
        detail: typeof json.detail === "string" ? json.detail : "",
        retryAfterS: retryAfterSeconds(response.headers.get("Retry-After"), this.#env.now()),
        queue: json.queue && typeof json.queue.position === "number" ? json.queue : null,
      },
    };
  }

  /**
   * A refusal: wait and ask again (429, 503, no network), or give up saying why.
   * @param {Refusal} refusal
   * @param {boolean} renewing a renewal was refused: what plays may go on meanwhile
   */
  #refused(refusal, renewing) {
    this.refusal = refusal;
    const waits = refusal.status === 429 || refusal.status === 503 || refusal.status === 0;
    if (waits) {
      const retryAfterS = refusal.retryAfterS ?? DEFAULT_RETRY_S;
      const next = renewing ? () => this.renew("retry") : () => this.#attempt();
      this.#env.clearTimeout(this.#retryTimer);
      this.#retryTimer = this.#env.setTimeout(next, retryAfterS * 1000);
      if (!renewing) {
        this.#setState("waiting", {
          code: refusal.code,
          retryAfterS,
          position: refusal.queue ? refusal.queue.position : null,
          etaSeconds: refusal.queue && refusal.queue.etaSeconds != null ? refusal.queue.etaSeconds : null,
        });
      }
      return;
    }
    if (refusal.code === "event_closed" || refusal.code === "event_cancelled") {
      this.#end(refusal.code === "event_closed" ? "closed" : "voided");
      return;
    }
    this.#finish(true);
    this.#setState("refused", { ...refusal });
  }

  // --- playing ----------------------------------------------------------------------

  /** @param {LinkAnswer} answer */
  async #play(answer) {
    this.#teardownMedia();
    this.answer = answer;
    this.refusal = null;
    if (answer.kind === "hls") this.#playHls(/** @type {string} */ (answer.url));
    else if (answer.kind === "player") this.#playFrame(/** @type {string} */ (answer.url));
    else if (answer.kind === "theolive") {
      if (!(await this.#playTheolive(answer))) return;
    }
    if (this.#over) return;
    this.#scheduleRenewal(answer);
    this.#keepSession(answer);
    this.#setState("playing", { kind: answer.kind, streamName: answer.streamName, engine: this.#engineName(), answer });
    if (answer.kind === "theolive") this.#loadChannel(answer);
  }

  /** What plays: "hls.js", "native" (the browser's own HLS), "iframe" or "theolive". */
  #engineName() {
    if (this.#hls) return "hls.js";
    if (this.#theo) return "theolive";
    if (this.#media && this.#media.tagName === "IFRAME") return "iframe";
    return "native";
  }

  /** @param {LinkAnswer} answer */
  #loadChannel(answer) {
    if (!this.#theo) return;
    this.#theo.loadChannel(answer.channelId || "").catch((error) => this.#theoliveFailed(error));
  }

  /** @param {LinkAnswer} answer */
  #swap(answer) {
    const previous = this.answer;
    if (!previous || previous.kind !== answer.kind) {
      this.#play(answer);
      return;
    }
    this.answer = answer;
    if (answer.kind === "hls" && this.#hls) this.#hls.loadSource(/** @type {string} */ (answer.url));
    else if (answer.kind === "hls" && this.#media) /** @type {HTMLVideoElement} */ (this.#media).src = answer.url || "";
    else if (answer.kind === "player" && this.#media) /** @type {HTMLIFrameElement} */ (this.#media).src = answer.url || "";
    else if (answer.kind === "theolive" && this.#theo) {
      this.#theoToken = answer.token || "";
      this.#loadChannel(answer);
    }
    this.#scheduleRenewal(answer);
    this.#keepSession(answer);
  }

  /** @param {string} url */
  #playHls(url) {
    const video = /** @type {HTMLVideoElement} */ (this.#env.document.createElement("video"));
    video.muted = true;
    video.autoplay = true;
    video.controls = true;
    video.playsInline = true;
    this.#mount(video);
    const Hls = this.#options.Hls === undefined ? /** @type {any} */ (globalThis).Hls : this.#options.Hls;
    if (Hls && Hls.isSupported()) {
      const hls = /** @type {HlsInstance} */ (new Hls({ liveDurationInfinity: true }));
      this.#hls = hls;
      this.engine = hls;
      hls.on(Hls.Events.ERROR, (_name, data) => {
        const code = data.response && data.response.code;
        if (code === 401 || code === 403) {
          this.renew(`HTTP ${code} from the stream`);
        } else if (data.fatal) {
          this.#error("media_error", `${data.type}: ${data.details}`, "hls");
        }
      });
      hls.loadSource(url);
      hls.attachMedia(video);
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      this.engine = video;
      video.src = url; // Safari and browsers that play HLS themselves
      video.addEventListener("error", () => {
        if (this.#media !== video) return;
        this.#error("media_error", video.error ? video.error.message : "unknown", "hls");
      });
    } else {
      this.#error("no_hls_playback", "This browser cannot play HLS without hls.js.", "hls");
      return;
    }
    const playing = video.play();
    if (playing) playing.catch(() => {}); // muted autoplay; the controls work too
  }

  /** @param {string} url */
  #playFrame(url) {
    const frame = /** @type {HTMLIFrameElement} */ (this.#env.document.createElement("iframe"));
    frame.title = "Event player";
    frame.allow = "autoplay; fullscreen";
    frame.src = url;
    this.#mount(frame);
    this.engine = frame;
  }

  /**
   * @param {LinkAnswer} answer
   * @returns {Promise<boolean>} whether a player was built
   */
  async #playTheolive(answer) {
    const box = this.#env.document.createElement("div");
    this.#mount(box);
    this.#theoToken = answer.token || "";
    let namespace = this.#options.THEOLive === undefined ? /** @type {any} */ (globalThis).THEOLive : this.#options.THEOLive;
    if (!namespace && this.#options.theoliveScript) {
      try {
        await this.#env.loadScript(this.#options.theoliveScript);
        namespace = /** @type {any} */ (globalThis).THEOLive;
      } catch (error) {
        this.#error("theolive_missing", `The THEOlive player did not load (${this.#options.theoliveScript}).`, "theolive");
        return false;
      }
    }
    if (!namespace) {
      this.#error("theolive_missing", "The THEOlive player is not on this page.", "theolive");
      return false;
    }
    if (this.#over || this.#media !== box) return false;
    const theo = /** @type {TheoLiveNamespace} */ (namespace);
    const player = new theo.Player(/** @type {HTMLElement} */ (box));
    this.#theo = player;
    this.engine = player;
    // The guide: the stream token goes in a header of the player's requests.
    player.addHeaderProvider(() => new Headers({ Authorization: `Bearer ${this.#theoToken}` }));
    if (player.addEventListener) {
      player.addEventListener("error", (event) => this.#theoliveFailed(event.error));
    }
    return true; // the channel is loaded once `playing` is out (#loadChannel)
  }

  /** @param {unknown} error */
  #theoliveFailed(error) {
    if (this.#theo === null) return;
    const message = error instanceof Error ? error.message : String(error);
    if (isLicenceFailure(message)) this.#error("theolive_licence", THEOLIVE_LICENCE_MESSAGE, "theolive", message);
    else this.#error("theolive_error", message, "theolive");
  }

  /** @param {HTMLElement} media fills the element */
  #mount(media) {
    media.style.width = "100%";
    media.style.height = "100%";
    media.style.border = "0";
    media.style.display = "block";
    this.#media = media;
    this.#element.append(media);
  }

  #teardownMedia() {
    if (this.#hls) this.#hls.destroy();
    if (this.#theo) this.#theo.destroy();
    this.#hls = null;
    this.#theo = null;
    const media = this.#media;
    this.#media = null;
    this.engine = null;
    if (media && "pause" in media && typeof media.pause === "function") {
      /** @type {HTMLVideoElement} */ (media).pause();
      media.removeAttribute("src");
    }
    if (media && media.tagName === "IFRAME") media.removeAttribute("src");
    if (media) media.remove();
  }

  /** @param {LinkAnswer} answer */
  #scheduleRenewal(answer) {
    this.#env.clearTimeout(this.#renewTimer);
    if (!answer.refreshAfter) return;
    const inMs = Math.max(RENEW_MIN_MS, Date.parse(answer.refreshAfter) - this.#env.now());
    this.#renewTimer = this.#env.setTimeout(() => this.renew("refreshAfter"), inMs);
  }

  // --- the viewing session ------------------------------------------------------------

  /** @param {LinkAnswer} answer */
  #keepSession(answer) {
    this.#env.clearTimeout(this.#heartbeatTimer);
    if (!answer.sessionId || !answer.heartbeatEveryS) return;
    const sessionId = answer.sessionId;
    const everyMs = answer.heartbeatEveryS * 1000;
    const beat = async () => {
      if (this.#over || this.sessionId !== sessionId) return;
      const response = await this.#sessionCall("POST", `${sessionId}/heartbeat`).catch(() => null);
      if (this.#over || this.sessionId !== sessionId) return;
      if (response && response.status === 404) {
        this.answer = { ...answer, sessionId: null }; // already over: nothing to end
        this.#end("session_ended");
        return;
      }
      this.#heartbeatTimer = this.#env.setTimeout(beat, everyMs);
    };
    this.#heartbeatTimer = this.#env.setTimeout(beat, everyMs);
  }

  /**
   * @param {"POST" | "DELETE"} method
   * @param {string} path under /v1/sessions/
   */
  async #sessionCall(method, path) {
    const token = await this.#options.getToken();
    return this.#env.fetch(`${this.#options.gateway}/v1/sessions/${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}` },
      keepalive: method === "DELETE",
    });
  }

  // --- the live stream ------------------------------------------------------------------

  async #connectLive() {
    const EventSourceClass = this.#env.EventSource;
    if (!EventSourceClass || this.#over) return;
    const token = await Promise.resolve(this.#options.getToken()).catch(() => null);
    if (!token || this.#over) return;
    const url = new URL(`${this.#options.gateway}/v1/events/live`);
    url.searchParams.set("eventId", this.#options.eventId);
    url.searchParams.set("access_token", token);
    const source = new EventSourceClass(url.toString());
    this.#live = source;
    source.addEventListener("snapshot", (message) => {
      const data = JSON.parse(/** @type {MessageEvent} */ (message).data);
      const record = data.watched ? data.watched[this.#options.eventId] : null;
      if (record) this.#onStatus(record.eventStatusCode, null);
    });
    source.addEventListener("event", (message) => {
      const data = JSON.parse(/** @type {MessageEvent} */ (message).data);
      if (data.eventId !== this.#options.eventId) return;
      this.#onStatus(data.event ? data.event.eventStatusCode : null, data.change);
    });
    source.addEventListener("session", (message) => {
      const data = JSON.parse(/** @type {MessageEvent} */ (message).data);
      const sessionId = this.sessionId;
      if (sessionId && data.sessionIds.includes(sessionId)) {
        this.answer = this.answer && { ...this.answer, sessionId: null }; // ended already
        this.#end(data.reason === "evicted" || data.reason === "ended_by_operator" ? data.reason : "session_ended");
      }
    });
    source.addEventListener("error", () => {
      if (source.readyState !== 2 || this.#over) return; // 2: CLOSED; else it reconnects itself
      source.close();
      this.#liveTimer = this.#env.setTimeout(() => this.#connectLive(), LIVE_RETRY_MS);
    });
  }

  /**
   * @param {string | null} status the event's eventStatusCode
   * @param {string | null} change the live message's change
   */
  #onStatus(status, change) {
    if (change === "voided" || status === "V") this.#end("voided");
    else if (change === "closed" || status === "C") this.#end("closed");
  }

  // --- endings --------------------------------------------------------------------------

  /** @param {string} reason closed, voided, evicted, ended_by_operator, session_ended */
  #end(reason) {
    if (this.#over) return;
    this.#finish(true);
    this.#setState("ended", { reason, message: ENDED_MESSAGES[reason] || reason });
  }

  /**
   * Stop everything: timers, media, live stream and (when it is still ours) the session.
   * @param {boolean} endSession
   */
  #finish(endSession) {
    this.#over = true;
    for (const timer of [this.#renewTimer, this.#retryTimer, this.#heartbeatTimer, this.#liveTimer]) {
      this.#env.clearTimeout(timer);
    }
    this.#teardownMedia();
    if (this.#live) this.#live.close();
    this.#live = null;
    const sessionId = this.sessionId;
    if (endSession && sessionId) this.#sessionCall("DELETE", sessionId).catch(() => {});
    this.answer = null;
  }

  /**
   * A player error: playback stops as on `stop()`, and `error` says why.
   * @param {string} code
   * @param {string} message in plain words, for the viewer
   * @param {string} kind
   * @param {string} [cause] what the player itself said
   */
  #error(code, message, kind, cause) {
    if (this.#over) return;
    this.#finish(true);
    this.#setState("error", { code, message, kind, cause: cause || null });
  }

  // --- events ---------------------------------------------------------------------------

  /**
   * @param {PlayerState} state
   * @param {Record<string, unknown>} detail
   */
  #setState(state, detail) {
    this.state = state;
    this.#emit(state, detail);
    this.#emit("statechange", { state, ...detail });
  }

  /**
   * @param {string} name
   * @param {Record<string, unknown>} detail
   */
  #emit(name, detail) {
    this.#element.dispatchEvent(new CustomEvent(name, { detail }));
  }
}
