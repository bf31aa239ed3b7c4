# anya-edge: the server, started by the same launcher and with the same exact
# permission flags as `deno task start` (see scripts/start.ts).
FROM denoland/deno:2.9.6

WORKDIR /app

# Sources stay root-owned; the runtime user may write only node_modules (filled
# at build time) and the data dir.
RUN mkdir -p /app/node_modules /app/data \
  && chown deno:deno /app/node_modules /app/data \
  && chmod 700 /app/data
USER deno

# Dependencies from the lockfile, in their own layer: rebuilt only when
# deno.json or deno.lock change.
COPY deno.json deno.lock ./
RUN deno install --frozen

COPY . .
RUN deno cache --frozen main.ts scripts/start.ts scripts/healthcheck.ts scripts/db_migrate.ts \
  scripts/keys_create.ts scripts/data_key_rotate.ts

ENV HOST=0.0.0.0 ANYA_DATA_DIR=/app/data
EXPOSE 8080
VOLUME ["/app/data"]

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["deno", "run", "--frozen", "--no-prompt", "--allow-env=PORT", "--allow-net=127.0.0.1", "scripts/healthcheck.ts"]

CMD ["deno", "run", "--frozen", "--allow-env", "--allow-run=deno", "scripts/start.ts", "run", "main.ts"]
