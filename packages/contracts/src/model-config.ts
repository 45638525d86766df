import type { TaskName } from './tasks.js';

/** The fields of a Hugging Face `config.json` that decide what a model can do. */
export interface ModelConfigSummary {
  architectures?: string[];
  id2label?: Record<string, string>;
  model_type?: string;
  is_encoder_decoder?: boolean;
  hidden_size?: number;
}

/**
 * The tasks a model serves, from its config, as the Hugging Face pipelines decide:
 * `*ForSequenceClassification` classifies, and with an `entailment` label (an NLI model)
 * also does zero-shot classification; `*ForConditionalGeneration` (encoder-decoder)
 * summarizes; `*ForCausalLM` / `*LMHeadModel` generates; a bare encoder (`BertModel`,
 * `XLMRobertaModel`, ..., what sentence-transformers exports) embeds.
 */
export function tasksForConfig(config: ModelConfigSummary): TaskName[] {
  const arch = config.architectures?.[0] ?? '';
  if (arch.endsWith('ForSequenceClassification')) {
    const nli = Object.values(config.id2label ?? {}).some((l) => l.toLowerCase().startsWith('entail'));
    return nli ? ['zero-shot-classification', 'classification'] : ['classification'];
  }
  if (arch.endsWith('ForConditionalGeneration') || (arch === '' && config.is_encoder_decoder === true)) return ['summarization'];
  if (arch.endsWith('ForCausalLM') || arch.endsWith('LMHeadModel')) return ['generation'];
  if (/^[A-Z][A-Za-z0-9]*Model$/.test(arch) && !/(LMHead|Generation|Seq2Seq|Causal)/.test(arch) && !arch.startsWith('Pretrained')) return ['embedding'];
  return [];
}

/** Labels in id order, from `id2label`. */
export function labelsForConfig(config: ModelConfigSummary): string[] {
  return Object.entries(config.id2label ?? {})
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([, label]) => label);
}
