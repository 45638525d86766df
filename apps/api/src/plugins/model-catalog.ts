import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import fp from 'fastify-plugin';
import type { FastifyBaseLogger } from 'fastify';
import {
  TASKS,
  isModelId,
  isTask,
  labelsForConfig,
  tasksForConfig,
  type ModelConfigSummary,
  type ModelInfo,
  type TaskName,
} from '@inferq/contracts';
import { httpError } from '../errors.js';

export interface ModelCatalogOptions {
  /** Folder holding `<org>/<name>/config.json`. */
  modelsDir: string;
  /** The model used for each task when a job names none. */
  defaults: Record<TaskName, string>;
  /** How long a read of the folder or of a model's config is reused, in milliseconds. @defaultValue 5000 */
  cacheTtlMs?: number;
}

export interface ModelCatalog {
  /** Every model in the folder with the tasks it serves, sorted by id. */
  list(): Promise<ModelInfo[]>;
  /** The model's info, or undefined when the folder has no such model. */
  get(modelId: string): Promise<ModelInfo | undefined>;
  /**
   * The model a job runs on: `modelId`, or the task's default. Throws
   * `INFERQ_ERR_UNKNOWN_TASK`, `INFERQ_ERR_UNKNOWN_MODEL` or `INFERQ_ERR_TASK_MISMATCH`.
   */
  resolve(task: string, modelId?: string): Promise<string>;
}

declare module 'fastify' {
  interface FastifyInstance {
    models: ModelCatalog;
  }
}

/** Most cached entries; past it the oldest go first (ids asked for but absent are cached too). */
const MAX_CACHED = 100_000;
/** Config reads in flight while listing; the event loop runs between groups of this size. */
const LIST_READ_CONCURRENCY = 64;

interface Cached<T> {
  expires: number;
  value: Promise<T>;
}

/** Reads and caches model configs; an id is checked with `isModelId` before it becomes a path. */
export function createModelCatalog(options: ModelCatalogOptions, log?: FastifyBaseLogger): ModelCatalog {
  const { modelsDir, defaults, cacheTtlMs } = { cacheTtlMs: 5000, ...options };
  const infos = new Map<string, Cached<ModelInfo | undefined>>();
  let listing: Cached<string[]> | undefined;

  function cached<T>(entry: Cached<T> | undefined, load: () => Promise<T>): Cached<T> {
    if (entry && entry.expires > Date.now()) return entry;
    return { expires: Date.now() + cacheTtlMs, value: load() };
  }

  async function readInfo(modelId: string): Promise<ModelInfo | undefined> {
    const [org, name] = modelId.split('/') as [string, string];
    let text: string;
    try {
      text = await readFile(join(modelsDir, org, name, 'config.json'), 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') log?.warn({ err, model: modelId }, 'cannot read model config');
      return undefined;
    }
    let config: ModelConfigSummary;
    try {
      config = JSON.parse(text) as ModelConfigSummary;
    } catch (err) {
      log?.warn({ err, model: modelId }, 'model config.json is not valid JSON; model ignored');
      return undefined;
    }
    const labels = labelsForConfig(config);
    const tasks = tasksForConfig(config);
    const dimension = tasks.includes('embedding') ? config.hidden_size : undefined;
    return {
      id: modelId,
      tasks,
      architecture: config.architectures?.[0] ?? 'unknown',
      ...(labels.length > 0 ? { labels } : {}),
      ...(typeof dimension === 'number' ? { dimension } : {}),
      default_for: TASKS.filter((task) => defaults[task] === modelId),
      path: modelId,
      served: false,
      workers: 0,
    };
  }

  /**
   * Linear in the cache's size: entries sit in the map in the order they expire (the TTL is
   * the same for all, and a refreshed entry moves to the end), so pruning drops expired
   * entries from the front and stops at the first live one.
   */
  function prune(now: number): void {
    for (const [id, e] of infos) {
      if (e.expires > now && infos.size < MAX_CACHED) break;
      infos.delete(id);
    }
  }

  function get(modelId: string): Promise<ModelInfo | undefined> {
    if (!isModelId(modelId)) return Promise.resolve(undefined);
    const previous = infos.get(modelId);
    const entry = cached(previous, () => readInfo(modelId));
    if (entry !== previous) {
      prune(Date.now());
      infos.delete(modelId);
      infos.set(modelId, entry);
    }
    return entry.value;
  }

  /** Every id's info, `LIST_READ_CONCURRENCY` reads at a time, yielding between groups: 20,000 folders never hold the event loop. */
  async function readAll(ids: readonly string[]): Promise<ModelInfo[]> {
    const found: ModelInfo[] = [];
    for (let start = 0; start < ids.length; start += LIST_READ_CONCURRENCY) {
      const group = await Promise.all(ids.slice(start, start + LIST_READ_CONCURRENCY).map(get));
      for (const info of group) if (info) found.push(info);
      await yieldToEventLoop();
    }
    return found;
  }

  async function subdirs(dir: string): Promise<string[]> {
    try {
      const entries = await readdir(dir, { withFileTypes: true });
      return entries.filter((e) => e.isDirectory() || e.isSymbolicLink()).map((e) => e.name);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') log?.warn({ err, dir }, 'cannot list models folder');
      return [];
    }
  }

  async function readIds(): Promise<string[]> {
    const ids: string[] = [];
    for (const org of await subdirs(modelsDir)) {
      for (const name of await subdirs(join(modelsDir, org))) {
        const id = `${org}/${name}`;
        if (isModelId(id)) ids.push(id);
      }
    }
    return ids.sort();
  }

  /** One listing at a time: concurrent `list()` calls share it while it is fresh. */
  let models: Cached<ModelInfo[]> | undefined;

  return {
    async list() {
      const previous = models;
      models = cached(models, async () => {
        listing = cached(listing, readIds);
        return readAll(await listing.value);
      });
      if (models !== previous) models.value.catch(() => (models = undefined));
      return models.value;
    },
    get,
    async resolve(task, modelId) {
      if (!isTask(task)) throw httpError('INFERQ_ERR_UNKNOWN_TASK', task, TASKS.join(', '));
      const id = modelId ?? defaults[task];
      const info = await get(id);
      if (!info) throw httpError('INFERQ_ERR_UNKNOWN_MODEL', id);
      if (!info.tasks.includes(task)) throw httpError('INFERQ_ERR_TASK_MISMATCH', id, task);
      return id;
    },
  };
}

/** `app.models`: the models under `MODELS_DIR`. */
export const modelCatalogPlugin = fp<ModelCatalogOptions>(
  async (app, opts) => {
    app.decorate('models', createModelCatalog(opts, app.log.child({ plugin: 'model-catalog' })));
  },
  { name: 'inferq-model-catalog' },
);
