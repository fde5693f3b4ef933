# syntax=docker/dockerfile:1
# ONEPlatform Gateway. Build: docker build -t oneplatform-gateway:0.1.0 .
# The image runs against a shared Redis (REDIS_URL). For the one-process demo (built-in
# simulator, embedded store), build it with the demo extra:
#   docker build --build-arg DEMO_STORE=true -t oneplatform-gateway:demo .
#   docker run --rm -p 8000:8000 -e IGM_MODE=simulator oneplatform-gateway:demo
# Production needs IGM_CUSTOMER_UID, IGM_SERVER_IP, REDIS_URL, TRUSTED_PROXIES,
# REDIRECT_ALLOWED_HOSTS and AUDIT_USER_ID_KEY (see docs/deployment.md); nothing secret
# is baked into the image.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
ARG NODE_IMAGE=node:20.18.1-bookworm-slim

# --- player libraries for the demo page: npm ci of the pinned package-lock.json ----
# (served at /_demo/vendor/ when DEMO_PAGE=true; only the files served are copied on)
FROM ${NODE_IMAGE} AS player-libraries
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# --- builder: the project and its dependencies in a venv ---------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Every dependency ships manylinux wheels: no compiler is needed, even here.
# The dependencies come from the lock file (exact versions, hash-checked: the image runs
# what was tested), then the project itself without resolving anything again.
COPY requirements.lock requirements-demo.lock ./
RUN pip install --require-hashes -r requirements.lock
# true: the demo extra too (the embedded store, for a one-process demo without Redis)
ARG DEMO_STORE=false
RUN if [ "$DEMO_STORE" = true ]; then pip install --require-hashes -r requirements-demo.lock; fi
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install --no-deps . \
 && python -m compileall -q /opt/venv

# --- runtime: the venv and the start script, as a non-root user --------------------
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    WEB_CONCURRENCY=2 \
    LOG_FORMAT=json
RUN groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid gateway --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin gateway
WORKDIR /srv/gateway
COPY --from=builder /opt/venv /opt/venv
COPY --chmod=0555 scripts/serve ./scripts/serve
COPY --chmod=0444 scripts/uvicorn-logging.json ./scripts/uvicorn-logging.json
COPY --from=player-libraries /src/node_modules/hls.js/dist/hls.min.js \
     ./node_modules/hls.js/dist/
COPY --from=player-libraries /src/node_modules/@theolive/player/THEOLive.js \
     /src/node_modules/@theolive/player/THEOplayer.transmux.js \
     /src/node_modules/@theolive/player/THEOplayer.transmux.wasm \
     ./node_modules/@theolive/player/
# the player kit the reference page imports (/_demo/kit/player.js, DEMO_KIT_DIR)
COPY --chmod=0444 clients/web/src/player.js ./clients/web/src/
USER 10001:10001
EXPOSE 8000
# Liveness only: /readyz (store and catalogue) is for the load balancer's decisions.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"
CMD ["/srv/gateway/scripts/serve"]
