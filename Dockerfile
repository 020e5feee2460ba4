# clusterdns image: `docker build -t clusterdns:0.1.0 .` (see docs/deploying.md).

# Both stages: Node.js 24, the LTS line supported until April 2028 (package.json's engines), on Debian 13 "trixie".
# Debian's security team covers trixie until about August 2028, past Node 24's own end; bookworm (Debian 12) left
# its care in June 2026 for the smaller LTS effort. The base's packages (libc, CA certificates) are what an image
# scanner reports on, so the base must be one still patched for as long as the runtime is.

# Build: all dependencies, compile src/ to dist/.
FROM node:24-trixie-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would run the build before tsconfig.json and src/ are copied.
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# Runtime: production dependencies and dist/ only.
FROM node:24-trixie-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
# A non-root process loses added capabilities at exec unless the binary carries them: give node the one file
# capability it needs to bind port 53, as CoreDNS's image does for its binary. It takes effect only where the pod
# adds NET_BIND_SERVICE, as manifests/base/deployment.yaml and kubeadm's CoreDNS Deployment both do;
# allowPrivilegeEscalation: false does not strip it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcap2-bin \
 && setcap cap_net_bind_service=+ep /usr/local/bin/node \
 && apt-get purge -y --auto-remove libcap2-bin \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /app/dist ./dist
USER 65532:65532
EXPOSE 53/udp 53/tcp 9153 8080 8181
# No node flags here: the server commands run node with their heap flags however they are started (image, npm start,
# the npm bin), set in one place, src/runtime/heap.ts, which says why. To raise the old space for a large cluster,
# set NODE_OPTIONS=--max-old-space-size=<MB> in the container's env: a flag of the user's own wins.
ENTRYPOINT ["node", "/app/dist/cli.js"]
CMD ["serve"]
