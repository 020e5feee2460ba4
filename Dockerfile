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
# adds NET_BIND_SERVICE (manifests/deployment.yaml); allowPrivilegeEscalation: false does not strip it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcap2-bin \
 && setcap cap_net_bind_service=+ep /usr/local/bin/node \
 && apt-get purge -y --auto-remove libcap2-bin \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /app/dist ./dist
USER 65532:65532
EXPOSE 53/udp 53/tcp 9153 8080 8181
# Heap sizes for a server whose live data is small and steady (about 30 MB of live heap at 100k endpoints; bench/README.md):
# - 2 MB semi-spaces instead of 16: listing 100k endpoints otherwise leaves ~50 MB more RSS (a 48 MB young
#   generation kept, and old-space garbage collected later). The hot path allocates little: no measurable cost.
# - a 256 MB old space: what node picks by itself in any container of up to 1 GiB (a quarter of the cgroup limit,
#   at least 256 MB), made explicit so that it does not depend on cgroup detection and the benchmarks, run on a
#   big host, measure the same. Under 256 MB V8 grows the heap by 1.3x its live data between full GCs, not up to
#   4x: the peak with 100k pods listed is ~140 MB instead of ~225. Raise it with the memory limit for clusters
#   whose live data nears it (several hundred thousand endpoints and pods).
ENTRYPOINT ["node", "--max-semi-space-size=2", "--max-old-space-size=256", "/app/dist/cli.js"]
CMD ["serve"]
