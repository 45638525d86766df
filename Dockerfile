# One image for the API and the worker; docker-compose.yml picks the command.
# GPU hosts: build with --build-arg ORT_INSTALL=cuda12 to fetch onnxruntime's CUDA provider
# (the root postinstall, scripts/onnxruntime-install.mjs, runs its installer only then).
FROM node:20-bookworm-slim AS build
WORKDIR /app
ARG ORT_INSTALL=skip
ENV ONNXRUNTIME_NODE_INSTALL=${ORT_INSTALL}
COPY package.json package-lock.json turbo.json tsconfig.json tsconfig.base.json ./
COPY apps ./apps
COPY packages ./packages
COPY test/package.json ./test/package.json
COPY bench/package.json ./bench/package.json
COPY scripts ./scripts
RUN npm ci --no-audit --no-fund && npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production MODELS_DIR=/models
COPY --from=build /app /app
VOLUME /models
EXPOSE 8080 9464
CMD ["node", "apps/api/dist/server.js"]
