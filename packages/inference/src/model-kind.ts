/**
 * Which tasks a model folder serves, from its `config.json` (`architectures`, labels).
 */
import type { ModelConfig } from './model-folder.js';
import { nliLabelIds } from './pipelines/zero-shot-classification.js';

/** The tasks inferq runs. */
export type ModelTask = 'text-classification' | 'zero-shot-classification' | 'summarization' | 'text-generation' | 'feature-extraction';

/**
 * The tasks a model serves, the preferred one first:
 * `*ForSequenceClassification` -> text-classification, and zero-shot-classification too
 * (first) when it has an `entailment` label; `*ForConditionalGeneration` (or
 * `is_encoder_decoder`) -> summarization; `*ForCausalLM` -> text-generation; a bare
 * encoder (`BertModel`, `XLMRobertaModel`, ...) -> feature-extraction (embeddings).
 */
export function modelTasks(config: ModelConfig): ModelTask[] {
  const arch = config.architectures?.[0] ?? '';
  if (arch.endsWith('ForSequenceClassification')) {
    return nliLabelIds(config) ? ['zero-shot-classification', 'text-classification'] : ['text-classification'];
  }
  if (arch.endsWith('ForConditionalGeneration') || (arch === '' && config.is_encoder_decoder === true)) return ['summarization'];
  if (arch.endsWith('ForCausalLM') || arch.endsWith('LMHeadModel')) return ['text-generation'];
  if (isBareEncoder(arch)) return ['feature-extraction'];
  return [];
}

/** `BertModel`, `XLMRobertaModel`, `MPNetModel`, ...: an encoder without a head, what sentence-transformers exports. */
export function isBareEncoder(architecture: string): boolean {
  return /^[A-Z][A-Za-z0-9]*Model$/.test(architecture) && !/(LMHead|Generation|Seq2Seq|Causal)/.test(architecture) && !architecture.startsWith('Pretrained');
}
