import type { TaskName } from './tasks.js';

/** The fields of a Hugging Face `config.json` that decide what a model can do. */
export interface ModelConfigSummary {
  architectures?: string[];
  id2label?: Record<string, string>;
  model_type?: string;
}

/**
 * The tasks a model serves, from its config: `*ForSequenceClassification` classifies.
 * (An NLI head with an `entailment` label will add zero-shot; generation heads follow.)
 */
export function tasksForConfig(config: ModelConfigSummary): TaskName[] {
  const arch = config.architectures?.[0] ?? '';
  const tasks: TaskName[] = [];
  if (arch.endsWith('ForSequenceClassification')) tasks.push('classification');
  return tasks;
}

/** Labels in id order, from `id2label`. */
export function labelsForConfig(config: ModelConfigSummary): string[] {
  return Object.entries(config.id2label ?? {})
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([, label]) => label);
}
