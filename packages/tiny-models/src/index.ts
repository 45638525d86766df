export * from './bert-classifier.js';
export * from './ensure-model.js';
export * from './onnx-graph.js';
export * from './rng.js';
export * from './wordpiece-tokenizer.js';
