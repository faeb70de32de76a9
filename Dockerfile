# The `serve` service as an image: compiled with dev dependencies, run with production ones only.
#
#   docker build -t s3-csv-converter .
#   docker build --secret id=extra_ca,src=/path/to/corporate-ca.pem -t s3-csv-converter .   # behind a TLS-inspecting proxy
#
# Without a Docker engine or a registry, docker/podman-build.sh makes the base image and builds this.
ARG BASE_IMAGE=node:22-bookworm-slim

FROM ${BASE_IMAGE} AS deps
ENV NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /app
COPY package.json package-lock.json ./
# The extra CA file is mounted for this one step and never copied, so no layer keeps it.
RUN --mount=type=secret,id=extra_ca \
    --mount=type=cache,target=/root/.npm,sharing=locked \
    if [ -s /run/secrets/extra_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/extra_ca; fi \
    && npm ci --no-audit --no-fund --loglevel=error

FROM deps AS build
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json

# Depends on the lockfile only, so a source change does not redo it. Pruning works from what is
# already on disk: no download, so no CA needed here.
FROM deps AS production-deps
RUN npm prune --omit=dev --no-audit --no-fund --loglevel=error

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="s3-csv-converter" \
      org.opencontainers.image.description="Converts CSV files landing in S3 into Parquet and Avro (SQS-driven service)" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production \
    TMP_DIR=/tmp \
    HEALTH_PORT=8080
WORKDIR /app
# Owned by root and read-only to the service: it writes nowhere but TMP_DIR.
COPY --from=production-deps /app/package.json ./package.json
COPY --from=production-deps /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY docker/healthcheck.mjs ./docker/healthcheck.mjs
# The base image's unprivileged `node` user, by number so that runAsNonRoot-style checks can verify it.
USER 1000:1000
# The only writable place the service needs (spilled sources); mount a tmpfs or volume here with a read-only root.
VOLUME ["/tmp"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["node", "/app/docker/healthcheck.mjs"]
# node itself is the process (no npm or shell wrapper), so SIGTERM reaches the service's drain.
ENTRYPOINT ["node", "/app/dist/src/cli/main.js"]
CMD ["serve"]
