# Herald in a container: a multi-stage build on Debian bookworm-slim. The first stage compiles the
# server (Release) and fetches the socket.io-client bundle pinned in package-lock.json; the second
# holds only the runtime libraries, the binary, the pages and the client bundles, and runs as the
# unprivileged user `herald` with its state (SQLite database, signing key) in the volume
# /var/lib/herald. Configuration: HERALD_* environment variables (or flags after `serve`).
#   docker build -t herald .
#   docker run -d -p 3000:3000 -v herald-data:/var/lib/herald -e HERALD_JWT_SECRET=... herald
#   docker exec -it <container> herald user add NAME --role admin
# See README.md, "Deploying".

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake pkg-config ca-certificates \
      libuv1-dev libhttp-parser-dev libjansson-dev libjwt-dev libssl-dev zlib1g-dev libsqlite3-dev \
      libpq-dev libhiredis-dev libmsgpack-dev libsodium-dev libsystemd-dev nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# socket.io-client only (the other npm packages are for tests and benchmarks)
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund
COPY CMakeLists.txt ./
COPY src ./src
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release \
 && cmake --build build --target herald -j"$(nproc)" \
 && strip --strip-unneeded build/herald

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libuv1 libhttp-parser2.9 libjansson4 libjwt0 libssl3 \
      zlib1g libsqlite3-0 libpq5 libhiredis0.14 libsodium23 libsystemd0 curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system herald \
 && useradd --system --gid herald --home-dir /var/lib/herald --no-create-home --shell /usr/sbin/nologin herald \
 && install -d -o herald -g herald -m 0750 /var/lib/herald
COPY --from=build /src/build/herald /usr/bin/herald
COPY --from=build /src/node_modules/socket.io-client/dist/socket.io.js /src/node_modules/socket.io-client/dist/socket.io.js.map \
     /src/node_modules/socket.io-client/dist/socket.io.min.js /src/node_modules/socket.io-client/dist/socket.io.min.js.map \
     /usr/share/herald/clients/socket.io-client/
COPY --from=build /src/node_modules/@socket.io/admin-ui/ui/dist /usr/share/herald/admin-ui
COPY clients/js/herald-client.js /usr/share/herald/clients/js/
COPY web /usr/share/herald/web

# Listen on every interface of the container; no demo accounts (make an admin with `herald user add`).
ENV HERALD_HOST=0.0.0.0 \
    HERALD_PORT=3000 \
    HERALD_DATA_DIR=/var/lib/herald \
    HERALD_WEB_ROOT=/usr/share/herald/web \
    HERALD_SOCKETIO_CLIENT_DIR=/usr/share/herald/clients/socket.io-client \
    HERALD_JS_CLIENT_DIR=/usr/share/herald/clients/js \
    HERALD_ADMIN_UI_ROOT=/usr/share/herald/admin-ui \
    HERALD_DEMO_USERS=false
USER herald
WORKDIR /var/lib/herald
VOLUME ["/var/lib/herald"]
EXPOSE 3000
# SIGTERM: graceful stop within --shutdown-grace (10 s); give `docker stop -t 15` or more
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS "http://127.0.0.1:${HERALD_PORT}/health" >/dev/null || exit 1
ENTRYPOINT ["/usr/bin/herald"]
CMD ["serve"]
