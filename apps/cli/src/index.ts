export * from './api-client.js';
export * from './cli.js';
export * from './context.js';
export * from './errors.js';
export * from './hub-download.js';
export * from './input-file.js';
export * from './progress.js';
