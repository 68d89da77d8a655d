# syntax=docker/dockerfile:1

# PocketBase with processman, serving examples/: two hello sidecars and the
# agno (Python) and AI SDK (Node.js) agents routed at /api/agno and /api/ai.
#
#   docker build -t processman .
#   docker run -p 8090:8090 -v pb_data:/app/pb_data processman
#
# Layout of the final image, which keeps the repository's relative paths
# (examples/agno-agent/requirements.txt installs ../../sdk/python, and
# examples/pb_processes.json names its processes' directories relative to
# itself):
#
#   /app/pocketbase                  the binary (its default --dir is /app/pb_data)
#   /app/pb_data                     volume: database, uploaded files, processman's logs
#   /app/examples/pb_processes.json  the processes (--processes)
#   /app/examples/pb_migrations      the notes collection (--migrationsDir)
#   /app/examples/agno-agent/.venv   the agent's virtualenv, which processman activates
#   /app/sdk/python                  the Python SDK, installed editable into that venv

# ---------------------------------------------------------------------------
# The binary. PocketBase uses a pure-Go SQLite driver, so CGO is off and the
# result runs on any Linux base image.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/pocketbase ./cmd/pocketbase

# ---------------------------------------------------------------------------
# The agno agent's virtualenv. A venv is not relocatable, so it is built at
# the path it has in the final image, on the same Python image.
FROM python:3.12-slim-bookworm AS python-deps
COPY sdk/python /app/sdk/python
WORKDIR /app/examples/agno-agent
COPY examples/agno-agent/requirements.txt ./
RUN python -m venv .venv \
    && .venv/bin/pip install --no-cache-dir --disable-pip-version-check -r requirements.txt

# ---------------------------------------------------------------------------
# Node.js 20 and the AI SDK agent's node_modules. Debian bookworm ships
# Node.js 18, so node comes from the official image. The agent's .npmrc
# (install-links=true) makes npm install @processman/sidecar
# (file:../../sdk/node) as a copy with its own dependencies, so node_modules
# needs nothing from sdk/node at run time.
FROM node:20-bookworm-slim AS node-deps
COPY sdk/node/package.json sdk/node/index.d.ts sdk/node/README.md /app/sdk/node/
COPY sdk/node/src /app/sdk/node/src
WORKDIR /app/examples/ai-sdk-agent
COPY examples/ai-sdk-agent/package.json examples/ai-sdk-agent/package-lock.json examples/ai-sdk-agent/.npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund

# ---------------------------------------------------------------------------
FROM python:3.12-slim-bookworm

# tini runs as PID 1 and starts PocketBase as its child. In a container the
# first process is PID 1, which the kernel treats specially:
# - it gets no default signal actions: a SIGTERM from `docker stop` that
#   arrives before PocketBase has installed its handler (early in its
#   start-up) is ignored, the stop times out and everything is SIGKILLed,
#   so the sidecars never get their graceful stop;
# - orphans are re-parented to it: a sidecar's own child whose parent exited
#   would stay a zombie forever, since PocketBase does not reap processes it
#   did not start.
# tini forwards signals to PocketBase (which then stops every sidecar's
# process group within its kill_timeout) and reaps orphans. `docker run
# --init` does the same with Docker's bundled tini; this image does not
# depend on that flag.
# tini is not version-pinned: bookworm is a stable release, so it only
# changes for security fixes.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 pocketbase \
    && useradd --system --uid 10001 --gid pocketbase --create-home --home-dir /home/pocketbase \
        --shell /usr/sbin/nologin pocketbase \
    && install -d -o pocketbase -g pocketbase -m 0750 /app/pb_data

# Only the node binary: the examples run `node server.mjs`. A process whose
# script is `npm` would also need /usr/local/lib/node_modules/npm.
COPY --from=node-deps /usr/local/bin/node /usr/local/bin/node
COPY --from=build /out/pocketbase /app/pocketbase
COPY sdk/python /app/sdk/python
# examples/ without local virtualenvs, node_modules and pb_data (.dockerignore).
COPY examples /app/examples
COPY --from=python-deps /app/examples/agno-agent/.venv /app/examples/agno-agent/.venv
COPY --from=node-deps /app/examples/ai-sdk-agent/node_modules /app/examples/ai-sdk-agent/node_modules

# Everything above belongs to root and is read-only for the server; it writes
# only to pb_data. A named volume mounted there starts with this directory's
# owner; a bind-mounted host directory must be writable by uid 10001. The
# numeric id lets Kubernetes' runAsNonRoot check the user without /etc/passwd.
USER 10001:10001
WORKDIR /app
VOLUME ["/app/pb_data"]
EXPOSE 8090

# No curl in the slim image; Python is there anyway.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8090/api/health', timeout=4)"]

# Migrations come from the image, so --automigrate=false: with it on, a
# collection changed in the dashboard would be written as a new migration
# file into the read-only /app/examples/pb_migrations, and the change would fail.
ENTRYPOINT ["/usr/bin/tini", "--", "/app/pocketbase"]
CMD ["serve", "--http", "0.0.0.0:8090", "--dir", "/app/pb_data", \
     "--processes", "/app/examples/pb_processes.json", \
     "--migrationsDir", "/app/examples/pb_migrations", "--automigrate=false"]
