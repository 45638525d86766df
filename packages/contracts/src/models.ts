import Type, { type Static } from 'typebox';
import { Task } from './tasks.js';

/**
 * Model ids are `<org>/<name>`, as on the Hugging Face Hub. The same rules as the Hub:
 * letters, digits, `-`, `_`, `.`; no `--` or `..`; at most 96 characters per part.
 * A valid id can never name a path outside the models folder.
 */
export const MODEL_ID_PATTERN = '^(?!.*(?:--|\\.\\.))[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$';
const modelIdRegex = new RegExp(MODEL_ID_PATTERN);

export function isModelId(id: string): boolean {
  return modelIdRegex.test(id);
}

export const ModelId = Type.String({
  pattern: MODEL_ID_PATTERN,
  description: 'Model id `<org>/<name>`, a folder under MODELS_DIR',
  examples: ['inferq/tiny-bert-classifier'],
});

export const ModelInfo = Type.Object(
  {
    id: ModelId,
    tasks: Type.Array(Task),
    architecture: Type.String({ description: 'config.json `architectures[0]`' }),
    labels: Type.Optional(Type.Array(Type.String(), { description: 'id2label, in id order' })),
    dimension: Type.Optional(Type.Integer({ description: 'embedding models: length of their vectors (before any `dimensions` cut)' })),
    default_for: Type.Array(Task, { description: 'Tasks for which this model is the default' }),
    path: Type.String({ description: 'The model folder, relative to MODELS_DIR' }),
    served: Type.Boolean({ description: 'Whether a live worker serves it now (heartbeats of the last 15 s)' }),
    workers: Type.Integer({ description: 'How many live workers serve it' }),
  },
  { $id: 'ModelInfo' },
);
export type ModelInfo = Static<typeof ModelInfo>;

export const ModelList = Type.Object({ data: Type.Array(ModelInfo) }, { $id: 'ModelList' });
export type ModelList = Static<typeof ModelList>;
