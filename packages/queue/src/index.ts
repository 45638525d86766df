export * from './connection.js';
export * from './job-data.js';
export * from './job-options.js';
export * from './job-view.js';
export * from './names.js';
