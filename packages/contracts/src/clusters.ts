import Type, { type Static } from 'typebox';
import { BatchInput } from './batches.js';
import { ErrorDetail } from './errors.js';
import { ModelId } from './models.js';

/** Most clusters a run may ask for (`num_clusters`, `max_clusters`). */
export const MAX_CLUSTERS = 1000;
/** Members inlined in a cluster run's result; past this, read `GET /v1/clusters/:id/members`. */
export const MAX_INLINE_MEMBERS = 10_000;

const settings = {
  model: Type.Optional(ModelId),
  num_clusters: Type.Optional(Type.Integer({ description: `How many clusters (1 to ${MAX_CLUSTERS}, at most the number of inputs); chosen automatically (silhouette) when left out` })),
  min_cluster_size: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, description: 'Smaller clusters become outliers (default 2)' })),
  max_clusters: Type.Optional(Type.Integer({ minimum: 2, maximum: MAX_CLUSTERS, description: 'Largest k tried when num_clusters is left out (default 60)' })),
  title_model: Type.Optional(ModelId),
};

export const CreateClusterBody = Type.Object(
  {
    inputs: Type.Optional(Type.Array(BatchInput, { description: 'The texts, as a batch takes them: `{custom_id, input}`' })),
    batch_id: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Cluster the inputs of an existing batch' })),
    source: Type.Optional(Type.Literal('tickets', { description: 'Cluster the tickets posted through /v1/tickets (kept TICKET_RETENTION_SECONDS)' })),
    since: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,5}[smhd]$', description: 'With source tickets: how far back, e.g. `7d`, `24h` (default 7d)' })),
    ...settings,
  },
  { additionalProperties: false, $id: 'CreateClusterBody' },
);
export type CreateClusterBody = Static<typeof CreateClusterBody>;

/** Settings of an NDJSON upload, in the query string. */
export const CreateClusterQuery = Type.Object(
  {
    model: Type.Optional(ModelId),
    num_clusters: Type.Optional(Type.Integer()),
    min_cluster_size: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
    max_clusters: Type.Optional(Type.Integer({ minimum: 2, maximum: MAX_CLUSTERS })),
  },
  { additionalProperties: false },
);
export type CreateClusterQuery = Static<typeof CreateClusterQuery>;

export const ClusterStatus = Type.Union([Type.Literal('embedding'), Type.Literal('clustering'), Type.Literal('completed'), Type.Literal('failed')]);
export type ClusterStatus = Static<typeof ClusterStatus>;

export const ClusterSource = Type.Union([Type.Literal('inputs'), Type.Literal('upload'), Type.Literal('batch'), Type.Literal('tickets')]);
export type ClusterSource = Static<typeof ClusterSource>;

export const ClusterExample = Type.Object({ custom_id: Type.String(), input: Type.String() });

export const Cluster = Type.Object({
  id: Type.Integer({ description: 'Cluster number, 0 the largest' }),
  size: Type.Integer(),
  share: Type.Number({ description: 'size / inputs clustered' }),
  keywords: Type.Array(Type.String(), { description: 'Class-based TF-IDF keywords, best first' }),
  title: Type.Optional(Type.String()),
  examples: Type.Array(ClusterExample, { description: 'The inputs nearest the centroid' }),
  members: Type.Optional(Type.Array(Type.String(), { description: `custom_ids, nearest the centroid first (inlined up to ${MAX_INLINE_MEMBERS} inputs in all)` })),
});
export type Cluster = Static<typeof Cluster>;

export const ClusterResult = Type.Object({
  clusters: Type.Array(Cluster, { description: 'Largest first' }),
  outliers: Type.Object({ size: Type.Integer(), members: Type.Optional(Type.Array(Type.String())) }),
  num_clusters: Type.Integer({ description: 'The k used (given or chosen)' }),
  chosen_automatically: Type.Boolean(),
  /** Inputs whose embedding failed (not clustered). */
  failed: Type.Integer(),
});
export type ClusterResult = Static<typeof ClusterResult>;

export const ClusterView = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('cluster_run'),
    status: ClusterStatus,
    model: Type.String(),
    source: ClusterSource,
    batch_id: Type.String({ description: 'The embedding batch that feeds the run' }),
    request_counts: Type.Object({ total: Type.Integer(), completed: Type.Integer(), failed: Type.Integer() }),
    created_at: Type.Integer({ description: 'Unix seconds' }),
    finished_at: Type.Union([Type.Integer(), Type.Null()]),
    result: Type.Optional(ClusterResult),
    error: Type.Optional(ErrorDetail),
  },
  { $id: 'ClusterView' },
);
export type ClusterView = Static<typeof ClusterView>;

export const ClusterParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });
export const ClusterQuery = Type.Object(
  { wait: Type.Optional(Type.Number({ minimum: 0, description: 'Hold the request up to this many seconds until the run ends' })) },
  { additionalProperties: false },
);

/** `7d`, `24h`, `30m`, `90s` in seconds. */
export function parseSince(since: string): number | undefined {
  const m = /^([1-9][0-9]{0,5})([smhd])$/.exec(since);
  if (!m) return undefined;
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as 's' | 'm' | 'h' | 'd'];
}
