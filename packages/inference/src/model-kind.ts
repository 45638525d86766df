/**
 * Which tasks a model folder serves, from its `config.json` (`architectures`, labels).
 */
import type { ModelConfig } from './model-folder.js';
import { nliLabelIds } from './pipelines/zero-shot-classification.js';

/** The tasks inferq runs. */
export type ModelTask = 'text-classification' | 'zero-shot-classification' | 'summarization' | 'text-generation';

/**
 * The tasks a model serves, the preferred one first:
 * `*ForSequenceClassification` -> text-classification, and zero-shot-classification too
 * (first) when it has an `entailment` label; `*ForConditionalGeneration` (or
 * `is_encoder_decoder`) -> summarization; `*ForCausalLM` -> text-generation.
 */
export function modelTasks(config: ModelConfig): ModelTask[] {
  const arch = config.architectures?.[0] ?? '';
  if (arch.endsWith('ForSequenceClassification')) {
    return nliLabelIds(config) ? ['zero-shot-classification', 'text-classification'] : ['text-classification'];
  }
  if (arch.endsWith('ForConditionalGeneration') || (arch === '' && config.is_encoder_decoder === true)) return ['summarization'];
  if (arch.endsWith('ForCausalLM') || arch.endsWith('LMHeadModel')) return ['text-generation'];
  return [];
}
