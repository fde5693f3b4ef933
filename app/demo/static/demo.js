// The reference page: open events live from GET /v1/events/live, a Play button per
// event, and the three ways to play what POST /v1/events/{eventId}/play answers:
//   kind "hls"      hls.js in a <video> (native HLS where hls.js is missing)
//   kind "player"   the iGame player URL in an <iframe>
//   kind "theolive" the THEOlive player: loadChannel(channelId), the token in a header
// The link is renewed at refreshAfter (and when a playlist or segment answers 401/403);
// an `event` message closing or voiding the playing event tears the player down.
// With MAX_STREAMS_PER_USER, the answer opens a viewing session: the page sends its
// heartbeats, ends it when playback stops, renews with it, and stops when a `session`
// message says it ended (another device took over).
// window.demoState mirrors what the page does, for people and for the browser tests.

const $ = (id) => document.getElementById(id);
const state = {
  token: null, // the viewer JWT sent as Authorization: Bearer (and ?access_token= for SSE)
  tokenSource: null, // "issuer" (GET /_demo/token) or "pasted"
  feed: null, // "live" (SSE) or "polling" (GET /v1/events/open, when /live is absent)
  events: {}, // eventId -> EventOut
  lastEventId: null,
  playing: null, // {eventId, kind, answer}
  hls: null,
  theolive: null, // {channelId, token}
  lastProblem: null, // {code, status, detail} of the last refusal
  playerError: null,
  stopped: null, // {eventId, reason}
  renewals: 0,
  session: null, // {id, everyS} of the viewing session the playing link opened
};
window.demoState = state;

let theoPlayer = null;
let renewTimer = null;
let tokenTimer = null;
let source = null;
let pollTimer = null;
let heartbeatTimer = null;

// --- credentials ----------------------------------------------------------------

async function fetchDemoToken() {
  const answer = await fetch("/_demo/token", { cache: "no-store" });
  if (!answer.ok) return false;
  const body = await answer.json();
  state.token = body.accessToken;
  state.tokenSource = "issuer";
  // renew a minute before it expires
  const inMs = Math.max(10_000, body.expiresAt * 1000 - Date.now() - 60_000);
  clearTimeout(tokenTimer);
  tokenTimer = setTimeout(fetchDemoToken, inMs);
  return true;
}

function askForToken() {
  $("auth").hidden = false;
  return new Promise((resolve) => {
    $("use-jwt").addEventListener("click", () => {
      const value = $("jwt").value.trim();
      if (!value) return;
      state.token = value;
      state.tokenSource = "pasted";
      $("auth").hidden = true;
      resolve();
    });
  });
}

function authHeaders() {
  return { Authorization: `Bearer ${state.token}` };
}

// --- the event list ---------------------------------------------------------------

function setEvents(events) {
  state.events = {};
  for (const event of events) state.events[event.eventId] = event;
  renderEvents();
}

function renderEvents() {
  const list = $("events");
  list.replaceChildren();
  const events = Object.values(state.events).sort((a, b) =>
    (a.startTime || "").localeCompare(b.startTime || ""),
  );
  for (const event of events) {
    const item = document.createElement("li");
    item.dataset.eventId = event.eventId;
    if (state.playing && state.playing.eventId === event.eventId) item.className = "playing";
    const label = document.createElement("span");
    label.textContent = event.title || event.eventId;
    const details = document.createElement("small");
    const start = event.startTime ? new Date(event.startTime).toISOString().slice(11, 16) : "";
    const geo = event.geoAllow && event.geoAllow.length ? ` · only ${event.geoAllow.join(", ")}` : "";
    details.textContent = `${event.sportCode} · ${start} UTC${geo}`;
    label.append(details);
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Play";
    button.addEventListener("click", () => play(event.eventId));
    item.append(label, button);
    list.append(item);
  }
}

function onChange(message) {
  const { eventId, change, event } = message;
  if (event && (change === "opened" || change === "updated")) {
    state.events[eventId] = event;
  } else {
    delete state.events[eventId];
  }
  renderEvents();
  const status = event ? event.eventStatusCode : null;
  const over = change === "closed" || change === "voided" || status === "C" || status === "V";
  if (over && state.playing && state.playing.eventId === eventId) {
    const why = change === "voided" || status === "V" ? "cancelled (void)" : "over (closed)";
    stop(`The event is ${why}: playback stopped.`);
  }
}

function connectLive() {
  if (source) source.close();
  const url = new URL("/v1/events/live", location.href);
  url.searchParams.set("access_token", state.token);
  let opened = false;
  source = new EventSource(url);
  source.addEventListener("open", () => {
    opened = true;
    state.feed = "live";
    $("feed").textContent = "(live)";
  });
  source.addEventListener("snapshot", (message) => {
    state.lastEventId = message.lastEventId;
    setEvents(JSON.parse(message.data).events);
  });
  source.addEventListener("event", (message) => {
    state.lastEventId = message.lastEventId;
    onChange(JSON.parse(message.data));
  });
  source.addEventListener("session", (message) => {
    const { sessionIds, reason } = JSON.parse(message.data);
    if (state.session && sessionIds.includes(state.session.id)) {
      state.session = null; // already ended: nothing to end
      stop(`Playback stopped: the viewing session ended (${reason}).`);
    }
  });
  source.addEventListener("error", () => {
    if (source.readyState !== EventSource.CLOSED) return; // the browser reconnects itself
    source.close();
    if (!opened) {
      poll(); // no /live on this gateway (or refused): list the open events by polling
    } else {
      // refused on reconnect (an expired token?): fresh token, then connect again
      setTimeout(async () => {
        if (state.tokenSource === "issuer") await fetchDemoToken();
        connectLive();
      }, 3000);
    }
  });
}

async function poll() {
  state.feed = "polling";
  $("feed").textContent = "(polling /v1/events/open)";
  try {
    const answer = await fetch("/v1/events/open", { cache: "no-store" });
    if (answer.ok) setEvents((await answer.json()).events);
  } finally {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(poll, 10_000);
  }
}

// --- playing ----------------------------------------------------------------------

function showStatus(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.className = isError ? "error" : "";
}

async function requestLink(eventId, sessionId = null) {
  const request = { device: "web", ull: $("ull").checked };
  if (sessionId) request.sessionId = sessionId; // a renewal: the session goes on
  const answer = await fetch(`/v1/events/${encodeURIComponent(eventId)}/play`, {
    method: "POST",
    headers: { ...authHeaders(), "Content-Type": "application/json" },
    body: JSON.stringify(request),
  });
  const body = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    const code = body.code || `http_${answer.status}`;
    state.lastProblem = { code, status: answer.status, detail: body.detail || "" };
    throw new Error(code);
  }
  return body;
}

async function play(eventId) {
  stop(null);
  state.stopped = null;
  state.lastProblem = null;
  showStatus("Asking for a link…");
  let answer;
  try {
    answer = await requestLink(eventId);
  } catch (error) {
    showStatus(`Refused: ${error.message}`, true);
    return;
  }
  await playAnswer(eventId, answer);
}

// Plays a link answer (from /play, or from POST /v1/events/{eventId}/links).
async function playAnswer(eventId, answer) {
  const event = state.events[eventId];
  $("now-playing").textContent = event ? event.title : eventId;
  state.playing = { eventId, kind: answer.kind, answer };
  renderEvents();
  showStatus(`Playing ${answer.kind} (${answer.streamName})`);
  if (answer.kind === "hls") playHls(answer.url);
  else if (answer.kind === "player") playFrame(answer.url);
  else if (answer.kind === "theolive") await playTheolive(answer);
  scheduleRenewal(answer);
  keepSession(answer);
}

// The viewing session (MAX_STREAMS_PER_USER): heartbeats every heartbeatEveryS; a 404
// means it ended (expired, or taken over by another device).
function keepSession(answer) {
  clearInterval(heartbeatTimer);
  if (!answer.sessionId) return;
  state.session = { id: answer.sessionId, everyS: answer.heartbeatEveryS };
  heartbeatTimer = setInterval(async () => {
    if (!state.session) return;
    const answer = await fetch(`/v1/sessions/${state.session.id}/heartbeat`, {
      method: "POST",
      headers: authHeaders(),
    }).catch(() => null);
    if (answer && answer.status === 404) {
      state.session = null;
      stop("Playback stopped: the viewing session ended.");
    }
  }, answer.heartbeatEveryS * 1000);
}

function endSession() {
  clearInterval(heartbeatTimer);
  const session = state.session;
  state.session = null;
  if (session) {
    fetch(`/v1/sessions/${session.id}`, {
      method: "DELETE",
      headers: authHeaders(),
      keepalive: true,
    }).catch(() => {});
  }
}

function scheduleRenewal(answer) {
  clearTimeout(renewTimer);
  if (!answer.refreshAfter) return;
  const inMs = Math.max(1000, Date.parse(answer.refreshAfter) - Date.now());
  renewTimer = setTimeout(() => renew("refreshAfter"), inMs);
}

// A fresh link for the event playing now, swapped in without stopping where possible.
async function renew(why) {
  if (!state.playing) return;
  const { eventId } = state.playing;
  let answer;
  try {
    answer = await requestLink(eventId, state.session ? state.session.id : null);
  } catch (error) {
    stop(`Renewal refused: ${error.message}`);
    return;
  }
  if (!state.playing || state.playing.eventId !== eventId) return;
  state.renewals += 1;
  state.playing = { eventId, kind: answer.kind, answer };
  if (answer.kind === "hls" && state.hls) state.hls.loadSource(answer.url);
  else if (answer.kind === "hls") $("video").src = answer.url;
  else if (answer.kind === "player") $("frame").src = answer.url;
  else if (answer.kind === "theolive") {
    state.theolive = { channelId: answer.channelId, token: answer.token };
    if (theoPlayer) await theoPlayer.loadChannel(answer.channelId).catch(theoError);
  }
  showStatus(`Link renewed (${why})`);
  scheduleRenewal(answer);
  keepSession(answer);
}

function playHls(url) {
  const video = $("video");
  video.hidden = false;
  const Hls = window.Hls;
  if (Hls && Hls.isSupported()) {
    const hls = new Hls({ liveDurationInfinity: true });
    state.hls = hls;
    hls.on(Hls.Events.ERROR, (_, data) => {
      const code = data.response && data.response.code;
      if (code === 401 || code === 403) {
        renew(`HTTP ${code} from the stream`);
        return;
      }
      if (data.fatal) {
        state.playerError = `${data.type}: ${data.details}`;
        showStatus(`Player error: ${data.details}`, true);
      }
    });
    hls.loadSource(url);
    hls.attachMedia(video);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = url; // Safari, newer chromium and others that play HLS themselves
    video.onerror = () => {
      if (video.getAttribute("src") !== url) return; // stopped: not a playback error
      state.playerError = `media: ${video.error ? video.error.message : "unknown"}`;
      showStatus(`Player error: ${state.playerError}`, true);
    };
  } else {
    state.playerError = "no_hls_playback";
    showStatus("This browser cannot play HLS without hls.js (run npm ci).", true);
    return;
  }
  video.play().catch(() => {}); // muted autoplay; a click on play works too
}

function playFrame(url) {
  const frame = $("frame");
  frame.hidden = false;
  frame.src = url;
}

function theoError(error) {
  state.playerError = `theolive: ${error && error.message ? error.message : error}`;
  showStatus(`THEOlive: ${state.playerError}`, true);
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`${src} did not load (run npm ci)`));
    document.head.append(script);
  });
}

async function playTheolive(answer) {
  const box = $("theolive");
  box.hidden = false;
  state.theolive = { channelId: answer.channelId, token: answer.token };
  try {
    if (!window.THEOLive) await loadScript("/_demo/vendor/THEOLive.js");
  } catch (error) {
    theoError(error);
    return;
  }
  // THEOlive's service worker (iOS) must be served from the page's own path over
  // https: not done here.
  theoPlayer = new window.THEOLive.Player(box);
  // The guide: the streamToken goes in a header of the player's requests
  // (THEOlive token-based security: Authorization: Bearer <token>).
  theoPlayer.addHeaderProvider(
    () => new Headers({ Authorization: `Bearer ${state.theolive.token}` }),
  );
  state.theolive.created = true;
  theoPlayer.loadChannel(answer.channelId).catch(theoError);
}

// Tear down whatever plays; `reason` (when given) is shown to the viewer.
function stop(reason) {
  clearTimeout(renewTimer);
  endSession();
  const eventId = state.playing ? state.playing.eventId : null;
  if (state.hls) {
    state.hls.destroy();
    state.hls = null;
  }
  const video = $("video");
  video.pause();
  video.removeAttribute("src");
  video.load();
  video.hidden = true;
  const frame = $("frame");
  frame.removeAttribute("src");
  frame.hidden = true;
  if (theoPlayer) {
    theoPlayer.destroy();
    theoPlayer = null;
  }
  const box = $("theolive");
  box.replaceChildren();
  box.hidden = true;
  state.playing = null;
  state.theolive = null;
  if (reason) {
    state.stopped = { eventId, reason };
    $("now-playing").textContent = "Nothing playing";
    showStatus(reason, true);
  }
  renderEvents();
}

// For scripts and tests: play an answer obtained elsewhere, or stop with a reason.
window.demoPage = { playAnswer, stop };

async function start() {
  const issued = await fetchDemoToken().catch(() => false);
  if (!issued) await askForToken();
  connectLive();
}

window.addEventListener("pagehide", endSession);

start();
