export * from './app.js';
export * from './config.js';
export * from './errors.js';
export * from './job-end-watch.js';
export * from './logger.js';
export * from './plugins/model-catalog.js';
export * from './plugins/queues.js';
