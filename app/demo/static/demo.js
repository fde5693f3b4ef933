// The reference page: open events live from GET /v1/events/live, a Play button per
// event, and a choice of how to play. The playing itself is the player kit's
// (clients/web, served at /_demo/kit/player.js): it asks the gateway for a link, plays
// it (hls.js, the iGame player's iframe or THEOlive), renews it, keeps the viewing
// session alive, waits its turn in a crowd and tears down when the event closes. This
// page only lists events, gets a token and shows what the kit reports.
// window.demoState mirrors what the page does, for people and for the browser tests.

import { createPlayer } from "/_demo/kit/player.js";

const $ = (id) => document.getElementById(id);
const gateway = location.origin;
const state = {
  token: null, // the viewer JWT sent as Authorization: Bearer (and ?access_token= for SSE)
  tokenSource: null, // "issuer" (GET /_demo/token) or "pasted"
  feed: null, // "live" (SSE) or "polling" (GET /v1/events/open, when /live is absent)
  events: {}, // eventId -> EventOut
  lastEventId: null,
  choice: "auto", // how to play: auto (/play's ladder), hls, player, theolive
  playing: null, // {eventId, kind, answer}
  hls: null, // "hls.js" or "native" while an HLS link plays
  theolive: null, // {channelId, token, created}
  lastProblem: null, // {code, status, detail} of the last refusal
  playerError: null, // {code, message} of the last player error
  waiting: null, // {position, etaSeconds, retryAfterS} while the gateway asks to wait
  stopped: null, // {eventId, reason}
  renewals: 0,
  session: null, // {id, everyS} of the viewing session the playing link opened
};
window.demoState = state;

// The link each choice asks for; "auto" lets /play pick from the device's ladder.
const CHOICES = {
  auto: null,
  hls: { streamName: "HLS", kind: "raw" },
  player: { streamName: "HLS", kind: "player" },
  theolive: { streamName: "ULL", kind: "raw" },
};

let player = null;
let tokenTimer = null;
let source = null;
let pollTimer = null;

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

// The list only: the player follows its own event on the live stream (the kit).
function onChange(message) {
  const { eventId, change, event } = message;
  if (event && (change === "opened" || change === "updated")) {
    state.events[eventId] = event;
  } else {
    delete state.events[eventId];
  }
  renderEvents();
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

// --- playing: the kit -------------------------------------------------------------

function showStatus(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.className = isError ? "error" : "";
}

function play(eventId) {
  start(eventId, null);
}

// Plays a link answer minted elsewhere (POST /v1/events/{eventId}/links, or a back end).
function playAnswer(eventId, answer) {
  start(eventId, answer);
}

function start(eventId, answer) {
  stop(null);
  Object.assign(state, { stopped: null, lastProblem: null, playerError: null, waiting: null });
  state.choice = $("kind").value;
  const event = state.events[eventId];
  $("now-playing").textContent = event ? event.title : eventId;
  // one box per play: its events are this player's only
  const box = document.createElement("div");
  box.className = "player-box";
  $("player-area").replaceChildren(box);
  const options = {
    gateway,
    eventId,
    device: "web",
    ull: $("ull").checked || state.choice === "theolive",
    getToken: () => state.token,
    theoliveScript: "/_demo/vendor/THEOLive.js",
  };
  if (CHOICES[state.choice]) options.link = CHOICES[state.choice];
  if (answer) options.answer = answer;
  for (const [name, handler] of Object.entries(HANDLERS)) {
    box.addEventListener(name, (event) => handler(event.detail));
  }
  player = createPlayer(box, options);
}

const HANDLERS = {
  requesting() {
    showStatus("Asking for a link…");
  },
  waiting(detail) {
    state.waiting = {
      position: detail.position,
      etaSeconds: detail.etaSeconds,
      retryAfterS: detail.retryAfterS,
    };
    const line =
      detail.position != null
        ? `You are number ${detail.position} in line` +
          (detail.etaSeconds != null ? ` (about ${Math.ceil(detail.etaSeconds)} s)` : "")
        : `The gateway is busy (${detail.code})`;
    showStatus(`${line}; asking again in ${Math.ceil(detail.retryAfterS)} s.`);
  },
  playing(detail) {
    const answer = detail.answer;
    state.waiting = null;
    state.playing = { eventId: answer.eventId, kind: answer.kind, answer };
    state.hls = answer.kind === "hls" ? detail.engine : null;
    state.theolive =
      answer.kind === "theolive" ? { channelId: answer.channelId, token: answer.token, created: true } : null;
    keepSessionState(answer);
    renderEvents();
    showStatus(`Playing ${answer.kind} (${answer.streamName})`);
  },
  renewed(detail) {
    const answer = detail.answer;
    state.renewals += 1;
    state.playing = { eventId: answer.eventId, kind: answer.kind, answer };
    if (answer.kind === "theolive") state.theolive = { channelId: answer.channelId, token: answer.token, created: true };
    keepSessionState(answer);
    showStatus(`Link renewed (${detail.why})`);
  },
  refused(detail) {
    state.lastProblem = { code: detail.code, status: detail.status, detail: detail.detail };
    over(null);
    showStatus(`Refused: ${detail.code}${detail.detail ? ` (${detail.detail})` : ""}`, true);
  },
  ended(detail) {
    over(`${detail.message} (${detail.reason})`);
  },
  error(detail) {
    state.playerError = { code: detail.code, message: detail.message };
    over(null);
    showStatus(detail.message, true); // in plain words; the code is in demoState
  },
};

function keepSessionState(answer) {
  state.session = answer.sessionId ? { id: answer.sessionId, everyS: answer.heartbeatEveryS } : null;
}

// The kit has torn down; the page says so (`reason`, when given).
function over(reason) {
  const eventId = state.playing ? state.playing.eventId : null;
  Object.assign(state, { playing: null, hls: null, session: null });
  if (reason) {
    state.stopped = { eventId, reason };
    $("now-playing").textContent = "Nothing playing";
    showStatus(reason, true);
  }
  renderEvents();
}

// Stop whatever plays (the kit ends the session); `reason` (when given) is shown.
function stop(reason) {
  const stopping = player;
  player = null; // its `stopped` event is not this page's concern
  if (stopping) stopping.stop(reason || "stopped");
  state.theolive = null;
  over(reason);
}

// For scripts and tests: play an answer obtained elsewhere, or stop with a reason.
window.demoPage = { playAnswer, stop };

async function begin() {
  const issued = await fetchDemoToken().catch(() => false);
  if (!issued) await askForToken();
  connectLive();
}

window.addEventListener("pagehide", () => stop(null));

begin();
