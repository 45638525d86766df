import closeWithGrace from 'close-with-grace';
import { buildApp } from './app.js';
import { loadConfig, type ApiConfig } from './config.js';
import { authMode } from './auth-mode.js';

/** The API's only entry point: listen, and close gracefully on SIGINT/SIGTERM. */
let config: ApiConfig;
try {
  config = loadConfig();
} catch (err) {
  console.error(`inferq api: bad configuration: ${(err as Error).message}`);
  process.exit(1);
}
try {
  authMode(config);
} catch (err) {
  console.error(`inferq api: ${(err as Error).message}`);
  process.exit(1);
}

const app = await buildApp(config);

closeWithGrace({ delay: 10_000, logger: app.log }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'closing after an uncaught error');
  else app.log.info({ signal }, 'closing');
  await app.close();
});

try {
  await app.listen({ port: config.PORT, host: config.HOST });
} catch (err) {
  app.log.fatal({ err }, 'cannot listen');
  await app.close().catch(() => {});
  process.exit(1);
}
