import Type, { type Static } from 'typebox';
import type { ChatMessage } from '@inferq/contracts';
import { httpError } from '../../errors.js';
import { withParam } from './openai-errors.js';

/**
 * The OpenAI request bodies inferq takes, and how each maps onto a `generation` job. Fields
 * inferq can't honour are refused by name (400 `INFERQ_ERR_UNSUPPORTED_FIELD`), never ignored;
 * a field sent with its neutral value (`logprobs: false`, `presence_penalty: 0`, `tools: []`)
 * changes nothing and is accepted, as clients that fill in defaults send them.
 */

const Stop = Type.Union([Type.String({ minLength: 1, maxLength: 100 }), Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { maxItems: 4 }), Type.Null()], {
  description: 'Up to 4 texts; generation stops before the first one that appears',
});

/** Fields the two generation endpoints share. */
const sampling = {
  model: Type.String({ minLength: 1, maxLength: 200, description: 'A model id of `GET /openai/v1/models` (a folder of MODELS_DIR)' }),
  max_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], { description: 'Most tokens to generate (capped by MAX_NEW_TOKENS)' })),
  temperature: Type.Optional(Type.Union([Type.Number({ minimum: 0, maximum: 2 }), Type.Null()], { description: '0: greedy decoding; default 1 (sampling)' })),
  top_p: Type.Optional(Type.Union([Type.Number({ exclusiveMinimum: 0, maximum: 1 }), Type.Null()])),
  n: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 16 }), Type.Null()], { description: 'Choices to generate' })),
  stop: Type.Optional(Stop),
  seed: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: 4294967295 }), Type.Null()], { description: 'The same seed and request give the same text' })),
  stream: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  stream_options: Type.Optional(
    Type.Union([Type.Object({ include_usage: Type.Optional(Type.Boolean()) }, { additionalProperties: false }), Type.Null()]),
  ),
  user: Type.Optional(Type.String({ maxLength: 256, description: 'Accepted and not used (OpenAI uses it for abuse monitoring)' })),
};

const TextPart = Type.Object({ type: Type.String(), text: Type.Optional(Type.String()) }, { additionalProperties: true });
const Message = Type.Object(
  {
    role: Type.String(),
    content: Type.Union([Type.String(), Type.Array(TextPart, { maxItems: 100 }), Type.Null()]),
  },
  { additionalProperties: true },
);

export const ChatCompletionBody = Type.Object(
  {
    ...sampling,
    messages: Type.Array(Message, { minItems: 1, maxItems: 100, description: 'system (or developer), user and assistant messages; content a string or text parts' }),
    max_completion_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], { description: 'The same as max_tokens' })),
  },
  { additionalProperties: true },
);
export type ChatCompletionBody = Static<typeof ChatCompletionBody>;

export const CompletionBody = Type.Object(
  {
    ...sampling,
    prompt: Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1, maxItems: 16 })], { description: 'A prompt, or up to 16 prompts (token arrays are refused)' }),
    echo: Type.Optional(Type.Union([Type.Boolean(), Type.Null()], { description: 'Return the prompt followed by the completion' })),
  },
  { additionalProperties: true },
);
export type CompletionBody = Static<typeof CompletionBody>;

/** A value that asks for nothing: absent, null, false, 0, an empty list or object, or one of `neutral`. */
function isNeutral(value: unknown, neutral: readonly unknown[] = []): boolean {
  if (value === undefined || value === null || value === false || value === 0 || value === '') return true;
  if (Array.isArray(value)) return value.length === 0;
  if (typeof value === 'object') return Object.keys(value).length === 0;
  return neutral.includes(value);
}

/** What an unsupported field would ask for, as the refusal says it. */
export const REFUSED_FIELDS: Record<string, { why: string; neutral?: readonly unknown[] }> = {
  tools: { why: 'tool calling is not implemented' },
  tool_choice: { why: 'tool calling is not implemented', neutral: ['none', 'auto'] },
  parallel_tool_calls: { why: 'tool calling is not implemented', neutral: [true] },
  functions: { why: 'function calling is not implemented' },
  function_call: { why: 'function calling is not implemented', neutral: ['none', 'auto'] },
  logprobs: { why: 'log probabilities are not returned' },
  top_logprobs: { why: 'log probabilities are not returned' },
  logit_bias: { why: 'logit bias is not implemented' },
  presence_penalty: { why: 'OpenAI penalties are not implemented (inferq has repetition_penalty on /v1/jobs)' },
  frequency_penalty: { why: 'OpenAI penalties are not implemented (inferq has repetition_penalty on /v1/jobs)' },
  response_format: { why: 'structured output (JSON mode, JSON schema) is not implemented' },
  audio: { why: 'only text is generated' },
  modalities: { why: 'only text is generated' },
  prediction: { why: 'predicted outputs are not implemented' },
  reasoning_effort: { why: 'the models are not reasoning models' },
  web_search_options: { why: 'web search is not available' },
  store: { why: 'completions are not stored' },
  metadata: { why: 'completions are not stored' },
  service_tier: { why: 'there are no service tiers', neutral: ['auto', 'default'] },
  best_of: { why: 'best_of is not implemented', neutral: [1] },
  suffix: { why: 'insertion (suffix) is not implemented' },
};

/** Refuses every field that is neither in `schema` nor sent with a neutral value, naming it. */
export function refuseUnsupported(body: unknown, known: readonly string[]): void {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return;
  for (const [name, value] of Object.entries(body)) {
    if (known.includes(name)) continue;
    const refused = Object.hasOwn(REFUSED_FIELDS, name) ? REFUSED_FIELDS[name] : undefined;
    if (refused && isNeutral(value, refused.neutral)) continue;
    const why = refused?.why ?? 'this field is not part of what inferq implements';
    throw withParam(httpError('INFERQ_ERR_UNSUPPORTED_FIELD', JSON.stringify(name.slice(0, 100)), why), name.slice(0, 100));
  }
}

export const CHAT_FIELDS = Object.keys(ChatCompletionBody.properties);
export const COMPLETION_FIELDS = Object.keys(CompletionBody.properties);

/** What one OpenAI request asks of the generation task. */
export interface GenerationRequest {
  /** The job's `parameters`. */
  parameters: Record<string, unknown>;
  /** Choices the answer has. */
  n: number;
  /**
   * Greedy decoding with `n > 1`: every choice is the same text, so the job runs once
   * (`num_return_sequences` needs sampling) and its text is repeated.
   */
  repeat: boolean;
  stream: boolean;
  includeUsage: boolean;
}

const invalid = (param: string, message: string): Error => withParam(httpError('INFERQ_ERR_VALIDATION', `${param} ${message}`), param);

/** The job parameters of the sampling fields, as OpenAI means them (sampling at temperature 1 unless `temperature: 0`). */
export function generationRequest(body: Static<typeof ChatCompletionBody> | Static<typeof CompletionBody>, maxTokens: number | null | undefined): GenerationRequest {
  const n = body.n ?? 1;
  const greedy = body.temperature === 0;
  const parameters: Record<string, unknown> = {};
  if (typeof maxTokens === 'number') parameters.max_new_tokens = maxTokens;
  if (greedy) {
    parameters.do_sample = false;
  } else {
    // OpenAI samples from the whole distribution: no top-k (transformers' default is 50).
    parameters.do_sample = true;
    parameters.top_k = 0;
    parameters.temperature = body.temperature ?? 1;
    if (body.top_p !== undefined && body.top_p !== null) parameters.top_p = body.top_p;
    if (n > 1) parameters.num_return_sequences = n;
  }
  if (body.seed !== undefined && body.seed !== null) parameters.seed = body.seed;
  if (body.stop !== undefined && body.stop !== null) parameters.stop = typeof body.stop === 'string' ? [body.stop] : body.stop;
  const stream = body.stream === true;
  if (!stream && body.stream_options) throw invalid('stream_options', 'is only allowed with stream: true');
  if (stream && n > 1) {
    throw withParam(httpError('INFERQ_ERR_UNSUPPORTED_FIELD', '"n" above 1 with stream: true', 'a job streams the text of its first sequence only; ask without stream'), 'n');
  }
  return { parameters, n, repeat: greedy && n > 1, stream, includeUsage: body.stream_options?.include_usage === true };
}

/** OpenAI chat messages as inferq's: roles system (developer too), user, assistant; text content only. */
export function chatMessages(messages: Static<typeof ChatCompletionBody>['messages']): ChatMessage[] {
  return messages.map((message, i) => {
    const at = `messages[${i}]`;
    const extra = Object.keys(message).find((k) => k !== 'role' && k !== 'content' && k !== 'name');
    if (extra !== undefined) {
      const why = extra === 'tool_calls' || extra === 'tool_call_id' || extra === 'function_call' ? 'tool calling is not implemented' : 'only role and content are read';
      throw withParam(httpError('INFERQ_ERR_UNSUPPORTED_FIELD', `${at}.${extra.slice(0, 100)}`, why), `${at}.${extra.slice(0, 100)}`);
    }
    if ((message as { name?: unknown }).name !== undefined) {
      throw withParam(httpError('INFERQ_ERR_UNSUPPORTED_FIELD', `${at}.name`, 'chat templates have no participant names'), `${at}.name`);
    }
    const role = message.role === 'developer' ? 'system' : message.role;
    if (role !== 'system' && role !== 'user' && role !== 'assistant') {
      const why = role === 'tool' || role === 'function' ? 'tool calling is not implemented' : 'roles are system, developer, user and assistant';
      throw withParam(httpError('INFERQ_ERR_UNSUPPORTED_FIELD', `${at}.role ${JSON.stringify(String(role).slice(0, 40))}`, why), `${at}.role`);
    }
    if (message.content === null) throw invalid(`${at}.content`, 'must be a string or text parts');
    let content: string;
    if (typeof message.content === 'string') {
      content = message.content;
    } else {
      content = message.content
        .map((part, j) => {
          if (part.type !== 'text' || typeof part.text !== 'string') {
            throw withParam(
              httpError('INFERQ_ERR_UNSUPPORTED_FIELD', `${at}.content[${j}].type ${JSON.stringify(String(part.type).slice(0, 40))}`, 'only text parts are read'),
              `${at}.content[${j}].type`,
            );
          }
          return part.text;
        })
        .join('\n');
    }
    return { role, content };
  });
}
