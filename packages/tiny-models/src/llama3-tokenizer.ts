/**
 * Rewrites a byte-level BPE tokenizer (as {@link buildLlama} writes it) into the layout
 * Llama-3 ships: `tokenizer.json`'s post-processor is a `Sequence` of `ByteLevel` and a
 * `TemplateProcessing` that puts the BOS token first, and `tokenizer_config.json` has no
 * `add_bos_token` key (`PreTrainedTokenizerFast`); the chat template writes `{{ bos_token }}`
 * itself. So plain prompts get their BOS from the post-processor, and a rendered chat must
 * not get a second one.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** ChatML turns after the template's own BOS, as Llama-3-style templates start. */
export const LLAMA3_STYLE_TEMPLATE =
  "{{- bos_token }}{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

/**
 * Rewrites the tokenizer files in `dir` in place.
 * @param bosToken - the BOS token (already in the vocabulary), e.g. `<|endoftext|>`.
 */
export async function toLlama3StyleTokenizer(dir: string, bosToken: string): Promise<void> {
  const jsonPath = join(dir, 'tokenizer.json');
  const configPath = join(dir, 'tokenizer_config.json');
  const json = JSON.parse(await readFile(jsonPath, 'utf8')) as { model: { vocab: Record<string, number> }; post_processor: unknown };
  const id = json.model.vocab[bosToken];
  if (id === undefined) throw new Error(`llama3-tokenizer: ${bosToken} is not in the vocabulary`);
  json.post_processor = {
    type: 'Sequence',
    processors: [
      { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
      {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: bosToken, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [
          { SpecialToken: { id: bosToken, type_id: 0 } },
          { Sequence: { id: 'A', type_id: 0 } },
          { SpecialToken: { id: bosToken, type_id: 1 } },
          { Sequence: { id: 'B', type_id: 1 } },
        ],
        special_tokens: { [bosToken]: { id: bosToken, ids: [id], tokens: [bosToken] } },
      },
    ],
  };
  const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
  delete config.add_bos_token;
  delete config.add_eos_token;
  Object.assign(config, { bos_token: bosToken, tokenizer_class: 'PreTrainedTokenizerFast', chat_template: LLAMA3_STYLE_TEMPLATE });
  await writeFile(jsonPath, JSON.stringify(json, null, 2) + '\n');
  await writeFile(configPath, JSON.stringify(config, null, 2) + '\n');
}
