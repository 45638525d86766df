export * from './backend/onnx.js';
export * from './batch-scheduler.js';
export * from './model-folder.js';
export * from './padding.js';
export * from './pipelines/text-classification.js';
export * from './text-tokenizer.js';
