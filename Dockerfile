# syntax=docker/dockerfile:1
# Built and run on the current Node.js LTS (24); the code also runs on Node 20 and 22 (package.json engines).
# Build stage: full dependencies, compile TypeScript.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Runtime stage: production dependencies only, non-root.
FROM node:24-bookworm-slim
ENV NODE_ENV=production
# pg_dump / pg_restore / psql for /dr restore. pg_dump refuses servers newer than itself: use the major version of
# your RDS PostgreSQL (PGDG packages, e.g. postgresql-client-16 or -17, for servers newer than Debian's 15).
ARG PG_CLIENT=postgresql-client
RUN apt-get update && apt-get install -y --no-install-recommends ${PG_CLIENT} gzip ca-certificates \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
COPY lifeline.example.yml ./
USER node
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s --start-period=40s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/main.js"]
