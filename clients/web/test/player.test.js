import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import { THEOLIVE_LICENCE_MESSAGE, createPlayer, retryAfterSeconds } from "../src/player.js";
import {
  FakeClock,
  FakeElement,
  FakeEventSource,
  FakeGateway,
  FakeHls,
  fakeDocument,
  fakeTheolive,
  json,
  settle,
} from "./fakes.js";

const GATEWAY = "https://gateway.example";
const EVENT = "E1";
const PLAY = `/v1/events/${EVENT}/play`;
const LIVE_MS = 30 * 60 * 1000;

let clock;
beforeEach(() => {
  clock = new FakeClock();
  FakeEventSource.instances = [];
  FakeHls.instances = [];
});

function answer(kind, n, extra = {}) {
  const minted = clock.now();
  return {
    kind,
    eventId: EVENT,
    streamName: kind === "theolive" ? "ULL" : "HLS",
    ...(kind === "theolive" ? { channelId: `ch-${n}`, token: `tok-${n}` } : { url: `${GATEWAY}/${kind}/${n}` }),
    expiresAt: new Date(minted + LIVE_MS).toISOString(),
    refreshAfter: new Date(minted + LIVE_MS * 0.8).toISOString(),
    ...extra,
  };
}

/** A player on fakes; `events` records every event the host page would see. */
function start(gateway, options) {
  const element = new FakeElement("div");
  const events = [];
  for (const name of ["statechange", "requesting", "waiting", "playing", "renewed", "refused", "ended", "error", "stopped"]) {
    element.addEventListener(name, (event) => events.push([name, event.detail]));
  }
  const player = createPlayer(element, {
    gateway,
    eventId: EVENT,
    device: "web",
    getToken: () => "viewer-jwt",
    Hls: FakeHls,
    THEOLive: null,
    ...options,
    environment: {
      EventSource: FakeEventSource,
      setTimeout: clock.setTimeout,
      clearTimeout: clock.clearTimeout,
      now: clock.now,
      document: fakeDocument,
      loadScript: async () => {
        throw new Error("no script loading in tests");
      },
      ...options.environment,
    },
  });
  return { player, element, events, named: (name) => events.filter(([n]) => n === name).map(([, d]) => d) };
}

function playing(gateway, options = {}) {
  return start(GATEWAY, { ...options, environment: { fetch: gateway.fetch, ...options.environment } });
}

test("asks /play with the viewer's token and plays an hls answer with hls.js", async () => {
  const gateway = new FakeGateway({ [`POST ${PLAY}`]: () => json(200, answer("hls", 1)) });
  const { element, named, player } = playing(gateway, { ull: true });
  await settle();
  const [call] = gateway.to("POST", PLAY);
  assert.equal(call.headers.Authorization, "Bearer viewer-jwt");
  assert.deepEqual(call.body, { device: "web", ull: true });
  const [hls] = FakeHls.instances;
  assert.deepEqual(hls.sources, [`${GATEWAY}/hls/1`]);
  assert.equal(hls.media, element.children[0]);
  assert.equal(element.children[0].tagName, "VIDEO");
  assert.equal(player.state, "playing");
  assert.deepEqual(named("statechange").map((d) => d.state), ["requesting", "playing"]);
  assert.equal(named("playing")[0].kind, "hls");
});

test("renews at refreshAfter, with the session, and swaps the source in place", async () => {
  let n = 0;
  const gateway = new FakeGateway({
    [`POST ${PLAY}`]: () => json(200, answer("hls", ++n, { sessionId: "sess-0001", heartbeatEveryS: 600 })),
    "POST /v1/sessions/sess-0001/heartbeat": () => json(200, {}),
  });
  const { named, player } = playing(gateway);
  await settle();
  await clock.advance(LIVE_MS * 0.8 - 1000);
  assert.equal(gateway.to("POST", PLAY).length, 1, "not before refreshAfter");
  await clock.advance(1000);
  const calls = gateway.to("POST", PLAY);
  assert.equal(calls.length, 2);
  assert.equal(calls[1].body.sessionId, "sess-0001");
  assert.deepEqual(FakeHls.instances[0].sources, [`${GATEWAY}/hls/1`, `${GATEWAY}/hls/2`]);
  assert.equal(FakeHls.instances.length, 1, "the same hls.js instance");
  assert.equal(named("renewed")[0].why, "refreshAfter");
  assert.equal(player.renewals, 1);
});

test("a 401 or 403 from the media renews the link at once", async () => {
  let n = 0;
  const gateway = new FakeGateway({ [`POST ${PLAY}`]: () => json(200, answer("hls", ++n)) });
  const { named } = playing(gateway);
  await settle();
  FakeHls.instances[0].fail({ fatal: false, type: "networkError", details: "fragLoadError", response: { code: 403 } });
  await settle();
  assert.equal(gateway.to("POST", PLAY).length, 2);
  assert.equal(named("renewed")[0].why, "HTTP 403 from the stream");
  FakeHls.instances[0].fail({ fatal: true, type: "networkError", details: "manifestLoadError", response: { code: 404 } });
  assert.equal(named("error")[0].code, "media_error");
});

test("a player answer is an iframe, its src replaced on renewal", async () => {
  let n = 0;
  const gateway = new FakeGateway({ [`POST ${PLAY}`]: () => json(200, answer("player", ++n)) });
  const { element, player } = playing(gateway);
  await settle();
  const [frame] = element.children;
  assert.equal(frame.tagName, "IFRAME");
  assert.equal(frame.src, `${GATEWAY}/player/1`);
  assert.equal(frame.allow, "autoplay; fullscreen");
  await player.renew("test");
  assert.equal(element.children[0], frame);
  assert.equal(frame.src, `${GATEWAY}/player/2`);
});

test("a chosen stream and kind go to /links", async () => {
  const gateway = new FakeGateway({ [`POST /v1/events/${EVENT}/links`]: () => json(200, answer("player", 1)) });
  playing(gateway, { link: { streamName: "HLS", kind: "player" }, redirectUrl: "https://operator.example/" });
  await settle();
  const [call] = gateway.to("POST", `/v1/events/${EVENT}/links`);
  assert.deepEqual(call.body, { streamName: "HLS", kind: "player", redirectUrl: "https://operator.example/" });
});

test("THEOlive gets the channel and the token in a header; a licence failure is said plainly", async () => {
  const theolive = fakeTheolive(() => Promise.reject(new Error("The given license is invalid!")));
  const gateway = new FakeGateway({ [`POST ${PLAY}`]: () => json(200, answer("theolive", 1)) });
  const { named, player } = playing(gateway, { THEOLive: theolive });
  await settle();
  const [theo] = theolive.players;
  assert.deepEqual(theo.channels, ["ch-1"]);
  assert.equal(theo.headers().get("Authorization"), "Bearer tok-1");
  assert.equal(named("playing")[0].kind, "theolive");
  const [error] = named("error");
  assert.equal(error.code, "theolive_licence");
  assert.equal(error.message, THEOLIVE_LICENCE_MESSAGE);
  assert.equal(error.cause, "The given license is invalid!");
  assert.equal(player.state, "error");
  assert.ok(theo.destroyed);
});

test("a crowd: 429 with the line's position waits Retry-After, then plays", async () => {
  const gateway = new FakeGateway({
    [`POST ${PLAY}`]: (_call, count) =>
      count === 1
        ? json(429, { code: "rate_limited", queue: { position: 12, etaSeconds: 30 } }, { "Retry-After": "7" })
        : json(200, answer("hls", 1)),
  });
  const { named, player } = playing(gateway);
  await settle();
  assert.deepEqual(named("waiting"), [{ code: "rate_limited", retryAfterS: 7, position: 12, etaSeconds: 30 }]);
  assert.equal(player.state, "waiting");
  await clock.advance(6999);
  assert.equal(gateway.to("POST", PLAY).length, 1, "Retry-After honoured");
  await clock.advance(1);
  assert.equal(gateway.to("POST", PLAY).length, 2);
  assert.equal(player.state, "playing");
});

test("a refusal is reported with its code and not retried", async () => {
  const gateway = new FakeGateway({ [`POST ${PLAY}`]: () => json(403, { code: "geo_blocked", detail: "Not licensed for GB." }) });
  const { named, player, element } = playing(gateway);
  await settle();
  await clock.advance(60_000);
  assert.equal(gateway.to("POST", PLAY).length, 1);
  assert.equal(named("refused")[0].code, "geo_blocked");
  assert.equal(named("refused")[0].detail, "Not licensed for GB.");
  assert.equal(player.state, "refused");
  assert.deepEqual(element.children, []);
});

test("the live stream closing the event tears the player down and ends the session", async () => {
  const gateway = new FakeGateway({
    [`POST ${PLAY}`]: () => json(200, answer("hls", 1, { sessionId: "sess-0001", heartbeatEveryS: 10 })),
    "DELETE /v1/sessions/sess-0001": () => new Response(null, { status: 204 }),
  });
  const { named, player, element } = playing(gateway);
  await settle();
  const [live] = FakeEventSource.instances;
  const url = new URL(live.url);
  assert.equal(url.origin + url.pathname, `${GATEWAY}/v1/events/live`);
  assert.equal(url.searchParams.get("eventId"), EVENT);
  assert.equal(url.searchParams.get("access_token"), "viewer-jwt");
  live.send("event", { eventId: "OTHER", change: "closed", event: null });
  assert.equal(player.state, "playing");
  live.send("event", { eventId: EVENT, change: "closed", event: { eventId: EVENT, eventStatusCode: "C" } });
  await settle();
  assert.equal(player.state, "ended");
  assert.equal(named("ended")[0].reason, "closed");
  assert.equal(named("ended")[0].message, "The event is over: playback stopped.");
  assert.deepEqual(element.children, []);
  assert.ok(FakeHls.instances[0].destroyed);
  assert.equal(live.readyState, 2);
  assert.equal(gateway.to("DELETE", "/v1/sessions/sess-0001").length, 1);
  await clock.advance(LIVE_MS);
  assert.equal(gateway.to("POST", PLAY).length, 1, "no renewal after the end");
});

test("a voided event in the snapshot ends it too", async () => {
  const gateway = new FakeGateway({ [`POST ${PLAY}`]: () => json(200, answer("hls", 1)) });
  const { named } = playing(gateway);
  await settle();
  FakeEventSource.instances[0].send("snapshot", { events: [], watched: { [EVENT]: { eventStatusCode: "V" } } });
  assert.equal(named("ended")[0].reason, "voided");
});

test("heartbeats keep the session; a 404 means it ended elsewhere (no DELETE)", async () => {
  const gateway = new FakeGateway({
    [`POST ${PLAY}`]: () => json(200, answer("hls", 1, { sessionId: "sess-0001", heartbeatEveryS: 10 })),
    "POST /v1/sessions/sess-0001/heartbeat": (_call, count) =>
      count < 3 ? json(200, {}) : json(404, { code: "session_not_found" }),
  });
  const { named } = playing(gateway);
  await settle();
  await clock.advance(20_000);
  assert.equal(gateway.to("POST", "/v1/sessions/sess-0001/heartbeat").length, 2);
  assert.equal(named("ended").length, 0);
  await clock.advance(10_000);
  assert.equal(named("ended")[0].reason, "session_ended");
  assert.equal(gateway.to("DELETE", "/v1/sessions/sess-0001").length, 0);
});

test("a session message naming this player's session stops it (evicted)", async () => {
  const gateway = new FakeGateway({
    [`POST ${PLAY}`]: () => json(200, answer("hls", 1, { sessionId: "sess-0001", heartbeatEveryS: 10 })),
  });
  const { named } = playing(gateway);
  await settle();
  FakeEventSource.instances[0].send("session", { sessionIds: ["sess-0001"], reason: "evicted" });
  assert.equal(named("ended")[0].reason, "evicted");
  assert.equal(gateway.to("DELETE", "/v1/sessions/sess-0001").length, 0);
});

test("stop() ends the session, closes the live stream and says stopped", async () => {
  const gateway = new FakeGateway({
    [`POST ${PLAY}`]: () => json(200, answer("hls", 1, { sessionId: "sess-0001", heartbeatEveryS: 10 })),
    "DELETE /v1/sessions/sess-0001": () => new Response(null, { status: 204 }),
  });
  const { player, element, named } = playing(gateway);
  await settle();
  player.stop("viewer");
  await settle();
  assert.equal(player.state, "stopped");
  assert.equal(named("stopped")[0].reason, "viewer");
  assert.equal(gateway.to("DELETE", "/v1/sessions/sess-0001").length, 1);
  assert.equal(FakeEventSource.instances[0].readyState, 2);
  assert.deepEqual(element.children, []);
});

test("Retry-After as seconds or as a date", () => {
  const now = Date.parse("2026-12-07T10:00:00Z");
  assert.equal(retryAfterSeconds("12", now), 12);
  assert.equal(retryAfterSeconds("Mon, 07 Dec 2026 10:00:30 GMT", now), 30);
  assert.equal(retryAfterSeconds(null, now), null);
  assert.equal(retryAfterSeconds("soon", now), null);
});
