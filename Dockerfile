# StreamChat: one binary that serves the web client and speaks Socket.IO.
# Multi-stage: build the web client, build the server (which embeds it), run as non-root.
# The commands mirror scripts/run and .ci/run exactly.

FROM node:20-bookworm-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
COPY testdata/ /src/testdata/
RUN npm run build

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
COPY --from=web /src/web/dist web/dist
RUN cargo build --release -p streamchat

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home streamchat
COPY --from=build /src/target/release/streamchat /usr/local/bin/streamchat
USER 10001
# Listen on every interface inside the container; put TLS in front (see docs/deploy.md).
ENV HOST=0.0.0.0 PORT=8000
EXPOSE 8000
ENTRYPOINT ["streamchat", "serve"]
