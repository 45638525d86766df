import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { EmbeddingResult } from '@inferq/contracts';
import { clientGone } from '../../client-gone.js';
import { httpError } from '../../errors.js';
import { queueGeneration } from './generation-job.js';
import { withParam } from './openai-errors.js';
import { refuseUnsupported } from './openai-requests.js';

/** Most inputs of one embeddings request (each is one job; the worker batches them). */
export const MAX_EMBEDDING_INPUTS = 256;

const EmbeddingBody = Type.Object(
  {
    model: Type.String({ minLength: 1, maxLength: 200 }),
    input: Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1, maxItems: MAX_EMBEDDING_INPUTS })], {
      description: `A text or up to ${MAX_EMBEDDING_INPUTS} texts (token arrays are refused)`,
    }),
    encoding_format: Type.Optional(Type.Union([Type.Literal('float'), Type.Literal('base64')], { description: 'base64: little-endian float32 bytes, as OpenAI sends them' })),
    dimensions: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_536, description: 'Keep the first n dimensions (Matryoshka), renormalized' })),
    user: Type.Optional(Type.String({ maxLength: 256, description: 'Accepted and not used' })),
  },
  { additionalProperties: true },
);
const EMBEDDING_FIELDS = Object.keys(EmbeddingBody.properties);

/** `POST /embeddings` (under `/openai/v1`): one `embedding` job per input, answered together in input order. */
export const openaiEmbeddingRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/embeddings',
    {
      preValidation: async (request) => {
        const input = (request.body as { input?: unknown } | undefined)?.input;
        const tokens = typeof input === 'number' || (Array.isArray(input) && input.some((i) => typeof i !== 'string'));
        if (tokens) throw withParam(httpError('INFERQ_ERR_UNSUPPORTED_FIELD', 'input as token ids', 'send texts; the model\'s own tokenizer reads them'), 'input');
        refuseUnsupported(request.body, EMBEDDING_FIELDS);
      },
      schema: { summary: 'OpenAI embeddings', description: 'One `embedding` job per input.', tags: ['openai'], body: EmbeddingBody },
    },
    async (request, reply) => {
      const gone = clientGone(reply);
      const { model, input, encoding_format: format, dimensions } = request.body;
      const release = app.clientLimits.holdWait(request);
      try {
        let modelId: string;
        try {
          modelId = await app.models.resolve('embedding', model);
        } catch (err) {
          throw withParam(err as Error, 'model');
        }
        const texts = typeof input === 'string' ? [input] : input;
        const parameters = { ...(format === 'base64' ? { encoding: 'base64' } : {}), ...(dimensions !== undefined ? { dimensions } : {}) };
        const queued = await Promise.all(
          texts.map((text, i) =>
            queueGeneration<EmbeddingResult>(app, request, { task: 'embedding', modelId, input: text, parameters, gone }).catch((err: unknown) => {
              throw withParam(err as Error, typeof input === 'string' ? 'input' : `input[${i}]`);
            }),
          ),
        );
        const results = await Promise.all(queued.map((q) => q.result));
        if (results.some((r) => r === undefined)) return reply;
        const tokens = results.reduce((sum, r) => sum + r!.usage.input_tokens, 0);
        return {
          object: 'list',
          data: results.map((r, index) => ({ object: 'embedding', index, embedding: r!.embedding })),
          model: modelId,
          usage: { prompt_tokens: tokens, total_tokens: tokens },
        };
      } finally {
        release();
      }
    },
  );
};
