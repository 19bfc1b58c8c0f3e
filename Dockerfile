# One image, four roles: `demomail webhook | bootstrap | install-ca | inject` (DESIGN §1).
# Build:  docker build -t ghcr.io/demomail/demomail:0.1.0 .
# Checked without a Docker engine by test/integration/image.test.ts, which replays these steps.

ARG NODE_MAJOR=24

FROM node:${NODE_MAJOR}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json tsconfig.web.json ./
COPY scripts/copy-web-assets.mjs ./scripts/
COPY src ./src
RUN npx tsc -p tsconfig.build.json
# The viewer's page (src/viewer/web): browser code and static files into dist/src/viewer/web.
RUN npx tsc -p tsconfig.web.json && node scripts/copy-web-assets.mjs
RUN npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# distroless: no shell or package manager at run time; ships /etc/ssl/certs/ca-certificates.crt,
# which `install-ca` merges with the mail CA. Runs as the numeric non-root user 65532, so
# `runAsNonRoot: true` works without a hard-coded UID in the pod spec.
FROM gcr.io/distroless/nodejs24-debian12:nonroot
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
USER 65532:65532
ENV NODE_ENV=production
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/src/cli.js"]
CMD ["--help"]
