export * from './errors.js';
export * from './jobs.js';
export * from './models.js';
export * from './tasks.js';
export * from './model-config.js';
