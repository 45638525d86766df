export * from './errors.js';
export * from './jobs.js';
export * from './models.js';
export * from './tasks.js';
export * from './model-config.js';
export * from './batches.js';
export * from './webhooks.js';
export * from './task-parameters.js';
