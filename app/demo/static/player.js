// The demo player page (/_demo/player/{eventId}): what an iGame player link opens in
// demo mode. Plays the gateway's demo stream for that event with hls.js (or natively).
// window.demoPlayer mirrors its state for the browser tests.

const eventId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
const url = `/_demo/hls/${encodeURIComponent(eventId)}/playlist.m3u8`;
const video = document.getElementById("video");
const status = document.getElementById("status");
const player = { eventId, url, engine: null, error: null };
window.demoPlayer = player;

const Hls = window.Hls;
if (Hls && Hls.isSupported()) {
  player.engine = "hls.js";
  const hls = new Hls({ liveDurationInfinity: true });
  hls.on(Hls.Events.ERROR, (_, data) => {
    if (data.fatal) {
      player.error = `${data.type}: ${data.details}`;
      status.textContent = `Player error: ${data.details}`;
    }
  });
  hls.loadSource(url);
  hls.attachMedia(video);
} else if (video.canPlayType("application/vnd.apple.mpegurl")) {
  player.engine = "native";
  video.addEventListener("error", () => {
    player.error = `media: ${video.error ? video.error.message : "unknown"}`;
    status.textContent = `Player error: ${player.error}`;
  });
  video.src = url;
} else {
  player.error = "no_hls_playback";
  status.textContent = "This browser cannot play HLS without hls.js.";
}
video.play().catch(() => {});
