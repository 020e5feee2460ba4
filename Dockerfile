# clusterdns image: `docker build -t clusterdns:0.1.0 .` (see docs/deploying.md).

# Build: all dependencies, compile src/ to dist/.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would run the build before tsconfig.json and src/ are copied.
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# Runtime: production dependencies and dist/ only.
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
# A non-root process loses added capabilities at exec unless the binary carries them: give node the one file
# capability it needs to bind port 53, as CoreDNS's image does for its binary. It takes effect only where the pod
# adds NET_BIND_SERVICE (manifests/deployment.yaml); allowPrivilegeEscalation: false does not strip it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcap2-bin \
 && setcap cap_net_bind_service=+ep /usr/local/bin/node \
 && apt-get purge -y --auto-remove libcap2-bin \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /app/dist ./dist
USER 65532:65532
EXPOSE 53/udp 53/tcp 9153 8080 8181
# A young generation of 2 MB semi-spaces instead of V8's 16 MB: listing 100k endpoints otherwise leaves node with
# ~50 MB more RSS (a 48 MB young generation kept, and old-space garbage that is collected later), and the peak is
# as high. The hot path allocates little, so the extra scavenges cost nothing measurable (bench/README.md).
ENTRYPOINT ["node", "--max-semi-space-size=2", "/app/dist/cli.js"]
CMD ["serve"]
