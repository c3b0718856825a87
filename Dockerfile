# syntax=docker/dockerfile:1
# Production image: runtime dependencies only (tsx runs the TypeScript sources directly), non-root.

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    # Kubernetes probes reach the pod on its own address, not on loopback.
    HOST=0.0.0.0 \
    PORT=3000 \
    METRICS_PORT=9464
WORKDIR /app
# Owned by root and not writable by the service user: the code cannot be changed at run time.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY migrations ./migrations
COPY src ./src
COPY scripts ./scripts
USER node
EXPOSE 3000 9464
# Run migrations as a separate step (Job / init container) with DATABASE_OWNER_URL:
#   docker run --rm -e DATABASE_URL=... -e DATABASE_OWNER_URL=... IMAGE node --import tsx scripts/migrate.ts
# The V8 flags are those of `npm start` (README, "Performance"); a test keeps the two the same.
CMD ["node", "--max-semi-space-size=32", "--no-allocation-site-pretenuring", "--import", "tsx", "src/main.ts"]
