/**
 * Continuous batching (TGI, vLLM): one decoding loop per model, scheduled one step at a time.
 * A request that arrives while others decode is prefilled (with the other newcomers of that
 * moment, in one left-padded batch on the prefill session) at the next step boundary, the
 * running batch pausing for it (or, with `overlapPrefill`, stepping on meanwhile), and its
 * rows join the batch there; a row leaves at EOS, a stop string or its length, and
 * its place is free for the next newcomer at once. So a short request never waits for the
 * longest one in flight, and the decode batch stays full under a steady stream of requests.
 *
 * Each row keeps its own logits processors, sampler (seeded) and stopping state, and a joining
 * row's KV cache is left-padded (masked) to the batch's length with its own positions, so its
 * tokens are the ones it would get alone: what joins or leaves changes nothing.
 *
 * Caps: rows in the decode batch, and a token budget over every admitted row's prompt plus
 * the tokens it may generate (the KV cache's size). Interactive requests (priority 0) are
 * admitted first, and bulk requests (priority > 0) may use only part of both caps, so an
 * interactive request always finds room at the next step boundary. Greedy and sampling only:
 * beam search reorders rows within a request and stays on the static policy.
 */
import type { BatchStats } from '../batch-scheduler.js';
import type { FinishReason, GenerationConfig } from './generation-config.js';
import { sampleSeed, withoutEos, type GeneratedSequence } from './generate.js';
import { buildLogitsProcessors, type LogitsProcessorList } from './logits-processors.js';
import { GreedySampler, MultinomialSampler, type TokenSampler } from './sampler.js';
import { StoppingCriteriaList } from './stopping-criteria.js';
import { TextStream, type Decode } from './text-stream.js';

/** A batch of rows with a KV cache that other batches can join. */
export interface JoinableStepModel {
  /** Runs the prompts: next-token logits of each row, `[rows][vocab]`. */
  start(): Promise<Float32Array[]>;
  /** Feeds one token per current row; returns the next logits, `[rows][vocab]`. */
  next(tokens: readonly number[]): Promise<Float32Array[]>;
  /** Keeps these rows (indices into the current rows), in this order; an index may repeat. */
  select(rows: readonly number[]): void;
  /** Takes the rows of another batch of the same model after this one's. */
  append(other: this): void;
}

/** One request of a {@link ContinuousBatcher}. */
export interface ContinuousRequest {
  /** Prompt token ids, `[promptLen]`, not empty. */
  promptIds: readonly number[];
  /** Greedy or sampling (`numBeams` 1); `numReturnSequences` samples are that many rows. */
  config: GenerationConfig;
  /** Called with each new piece of final text of the first sample. */
  onText?: (delta: string) => void;
  /** Stops the request at the next step, with what it has so far. */
  signal?: AbortSignal;
  /** 0 interactive (the default), higher is bulk: admitted after interactive requests, within the bulk share. */
  priority?: number;
}

/** What one step of the loop did, for metrics and tests. */
export interface ContinuousStep {
  /** Rows decoded in this step. */
  rows: number;
  /** Requests whose rows joined the batch at this step's boundary. */
  joined: number;
  /** Rows that left the batch at this step. */
  left: number;
}

/** Options of {@link ContinuousBatcher}. */
export interface ContinuousBatcherOptions<M extends JoinableStepModel> {
  /** A batch of these prompts (not started), `[rows][promptLen]`. */
  open: (prompts: readonly (readonly number[])[]) => M;
  /** Decodes ids (special tokens skipped), for text, stop strings and streaming. */
  decode: Decode;
  /** Most rows in the decode batch (a sampling request with n sequences is n rows). @defaultValue 16 */
  maxRows?: number;
  /** Most tokens over the admitted rows' prompts plus their `maxNewTokens` (the KV cache's size). @defaultValue 16384 */
  maxTokens?: number;
  /** Fraction of both caps bulk requests may not use, kept for interactive ones. @defaultValue 0.25 */
  interactiveShare?: number;
  /**
   * Prefill newcomers on the prefill session while the running batch keeps decoding, instead
   * of pausing it for them. Off by default: the prefill thread runs at a lower priority, and
   * a decode loop that never pauses starved it on a busy 2-core host (p50 time to first token
   * 5.3 s against 3.5 s for the static policy, bench scenario 11); it pays where the prefill
   * has a device of its own. @defaultValue false
   */
  overlapPrefill?: boolean;
  /**
   * Called after each prefill: the newcomers prefilled together, their prompt tokens with and
   * without the left padding, its wall time (the batch statistics of a static scheduler).
   */
  onPrefill?: (stats: BatchStats) => void;
  /** Called after every decoding step. */
  onStep?: (step: ContinuousStep) => void;
}

interface Entry {
  request: ContinuousRequest;
  samples: number;
  cost: number;
  /** Prefill alone: a group prefill holding this request failed. */
  alone: boolean;
  results: GeneratedSequence[];
  left: number;
  resolve: (value: GeneratedSequence) => void;
  reject: (err: unknown) => void;
}

interface Row {
  entry: Entry;
  sample: number;
  processors: LogitsProcessorList;
  all: number[];
  generated: number[];
  sampler: TokenSampler;
  stream: TextStream;
  logits: Float32Array;
}

interface Prefilled<M> {
  entries: Entry[];
  model?: M;
  logits?: Float32Array[];
  error?: unknown;
}

/** The decode loop of one model: submit requests at any time, each resolves with its sequence. */
export class ContinuousBatcher<M extends JoinableStepModel> {
  private readonly maxRows: number;
  private readonly maxTokens: number;
  private readonly share: number;
  private readonly overlap: boolean;
  private readonly criteria = new StoppingCriteriaList();
  private pending: Entry[] = [];
  private rows: Row[] = [];
  private model: M | undefined;
  /** Tokens and rows held by the running batch and the prefill in flight. */
  private heldTokens = 0;
  private heldRows = 0;
  private prefill: Promise<Prefilled<M>> | undefined;
  private ready: Prefilled<M> | undefined;
  private loop: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: ContinuousBatcherOptions<M>) {
    this.maxRows = options.maxRows ?? 16;
    this.maxTokens = options.maxTokens ?? 16384;
    this.share = options.interactiveShare ?? 0.25;
    this.overlap = options.overlapPrefill ?? false;
    if (this.maxRows < 1 || this.maxTokens < 1) throw new Error('maxRows and maxTokens must be at least 1');
    if (!(this.share >= 0 && this.share < 1)) throw new Error('interactiveShare must be in [0, 1)');
  }

  /** Rows decoding now. */
  get activeRows(): number {
    return this.rows.length;
  }

  /** Requests waiting for room. */
  get waiting(): number {
    return this.pending.length;
  }

  /** Generates for one request; its rows join the running batch at the next step boundary. */
  submit(request: ContinuousRequest): Promise<GeneratedSequence> {
    if (this.closed) return Promise.reject(new Error('The continuous batcher is closed'));
    const { config } = request;
    if (config.numBeams > 1) return Promise.reject(new Error('Continuous batching runs greedy and sampling requests, not beam search'));
    if (request.promptIds.length === 0) return Promise.reject(new Error('Every prompt needs at least one token'));
    const { signal } = request;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const samples = config.doSample ? config.numReturnSequences : 1;
    return new Promise<GeneratedSequence>((resolve, reject) => {
      // Given up while waiting: it leaves the queue (once admitted, it ends at the next step).
      const onAbort = () => {
        const at = this.pending.indexOf(entry);
        if (at < 0) return;
        this.pending.splice(at, 1);
        reject(signal?.reason);
      };
      const entry: Entry = {
        request,
        samples,
        cost: (request.promptIds.length + config.maxNewTokens) * samples,
        alone: false,
        results: [],
        left: samples,
        resolve: (value) => (signal?.removeEventListener('abort', onAbort), resolve(value)),
        reject: (reason) => (signal?.removeEventListener('abort', onAbort), reject(reason)),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.push(entry);
      this.kick();
    });
  }

  /** Refuses new requests and waits for the admitted and waiting ones to finish. */
  async close(): Promise<void> {
    this.closed = true;
    await this.loop;
  }

  private kick(): void {
    // The loop starts a microtask later, so that requests submitted together prefill together.
    this.loop ??= Promise.resolve()
      .then(() => this.run())
      .catch((err: unknown) => this.failAll(err))
      .finally(() => {
        this.loop = undefined;
        if (this.pending.length > 0) this.kick();
      });
  }

  /** The next group of waiting requests that fits the caps, interactive ones first (FIFO within a class). */
  private admit(): Entry[] {
    const interactive = this.pending.filter((e) => (e.request.priority ?? 0) <= 0);
    const bulk = this.pending.filter((e) => (e.request.priority ?? 0) > 0);
    const group: Entry[] = [];
    let rows = this.heldRows;
    let tokens = this.heldTokens;
    const take = (queue: Entry[], maxRows: number, maxTokens: number): boolean => {
      for (const e of queue) {
        if (e.alone && group.length > 0) return false;
        const empty = rows === 0 && group.length === 0;
        // A request over the token cap on its own runs when the batch is empty, never starves.
        if (!empty && (rows + e.samples > maxRows || tokens + e.cost > maxTokens)) return false;
        group.push(e);
        rows += e.samples;
        tokens += e.cost;
        if (e.alone) return false;
      }
      return true;
    };
    const allInteractive = take(interactive, this.maxRows, this.maxTokens);
    // Bulk requests wait while an interactive one does, and leave part of both caps to them.
    if (allInteractive && !group.some((e) => e.alone)) {
      take(bulk, Math.max(1, Math.floor(this.maxRows * (1 - this.share))), this.maxTokens * (1 - this.share));
    }
    const taken = new Set(group);
    this.pending = this.pending.filter((e) => !taken.has(e));
    this.heldRows = rows;
    this.heldTokens = tokens;
    return group;
  }

  /** Prefills a group (one left-padded batch); samples of a request repeat its row. */
  private startPrefill(group: Entry[]): void {
    this.prefill = (async (): Promise<Prefilled<M>> => {
      const prompts = group.map((e) => e.request.promptIds);
      const started = performance.now();
      const report = (failed: boolean) =>
        this.options.onPrefill?.({
          size: group.length,
          paddedTokens: group.length * Math.max(...prompts.map((p) => p.length)),
          realTokens: prompts.reduce((n, p) => n + p.length, 0),
          durationMs: performance.now() - started,
          failed,
        });
      try {
        const model = this.options.open(prompts);
        const first = await model.start();
        report(false);
        const repeat = group.flatMap((e, i) => Array.from({ length: e.samples }, () => i));
        if (repeat.length !== group.length) model.select(repeat);
        return { entries: group, model, logits: repeat.map((i) => (first[i] as Float32Array).slice()) };
      } catch (error) {
        report(true);
        return { entries: group, error };
      }
    })().then((done) => {
      this.ready = done;
      return done;
    });
  }

  /** Merges a finished prefill into the running batch (or fails its requests). */
  private join(done: Prefilled<M>): number {
    this.prefill = undefined;
    this.ready = undefined;
    if (done.error !== undefined || !done.model || !done.logits) {
      this.release(done.entries);
      if (done.entries.length > 1) {
        // One bad prompt never fails its neighbours: each is tried alone.
        for (const e of done.entries) e.alone = true;
        this.pending.unshift(...done.entries);
      } else {
        for (const e of done.entries) e.reject(done.error);
      }
      return 0;
    }
    let k = 0;
    for (const entry of done.entries) {
      const { config, promptIds } = entry.request;
      for (let sample = 0; sample < entry.samples; sample++) {
        this.rows.push({
          entry,
          sample,
          processors: buildLogitsProcessors(config),
          all: [...promptIds],
          generated: [],
          sampler: config.doSample ? new MultinomialSampler(sampleSeed(config.seed, sample)) : new GreedySampler(),
          stream: new TextStream(this.options.decode, config.stop, promptIds),
          logits: done.logits[k++] as Float32Array,
        });
      }
    }
    if (this.model) this.model.append(done.model);
    else this.model = done.model;
    return done.entries.length;
  }

  /** A bug in the loop fails every request it holds rather than leaving them waiting. */
  private failAll(err: unknown): void {
    const entries = new Set([...this.rows.map((r) => r.entry), ...this.pending, ...(this.ready?.entries ?? [])]);
    this.rows = [];
    this.pending = [];
    this.model = undefined;
    this.ready = undefined;
    this.prefill = undefined;
    this.heldRows = 0;
    this.heldTokens = 0;
    for (const e of entries) e.reject(err);
  }

  private release(entries: readonly Entry[]): void {
    for (const e of entries) {
      this.heldRows -= e.samples;
      this.heldTokens -= e.cost;
    }
  }

  private finish(row: Row, reason: FinishReason): void {
    const { entry } = row;
    const { config, onText } = entry.request;
    const text = row.stream.finish(withoutEos(row.generated, config.eosTokenId));
    if (row.sample === 0 && onText) {
      const delta = row.stream.delta();
      if (delta) onText(delta);
    }
    entry.results[row.sample] = { tokens: row.generated, text, finishReason: reason };
    if (--entry.left === 0) {
      this.release([entry]);
      const [best] = entry.results as [GeneratedSequence];
      entry.resolve(entry.results.length > 1 ? { ...best, sequences: entry.results } : best);
    }
  }

  private async run(): Promise<void> {
    for (;;) {
      // A prefill that finished joins at this step boundary.
      let joined = 0;
      if (this.ready) joined = this.join(this.ready);
      if (!this.prefill && this.pending.length > 0) {
        const group = this.admit();
        if (group.length > 0) this.startPrefill(group);
      }
      // Prefill first (the default): the batch waits for the newcomers' prefill, so they
      // start at the next step boundary whatever the load.
      if (this.prefill && (this.rows.length === 0 || !this.overlap)) {
        joined += this.join(await this.prefill);
      }
      if (this.rows.length === 0) {
        this.model = undefined;
        if (!this.prefill && this.pending.length === 0) return;
        continue;
      }
      // 1. Every row picks its next token. A row whose settings fail here (scores that
      // overflow at a tiny temperature) fails its request alone; the others go on.
      const failed = new Map<Entry, unknown>();
      for (const row of this.rows) {
        const { config, onText } = row.entry.request;
        if (failed.has(row.entry)) continue;
        try {
          row.processors.apply(row.logits, { tokens: row.all, generated: row.generated.length });
          const token = row.sampler.next(row.logits);
          row.all.push(token);
          row.generated.push(token);
          if (config.stop.length > 0 || (onText && row.sample === 0)) row.stream.update(withoutEos(row.generated, config.eosTokenId));
        } catch (err) {
          failed.set(row.entry, err);
        }
      }
      for (const [entry, err] of failed) {
        this.release([entry]);
        entry.reject(err);
      }
      // 2. Rows that are done leave.
      const live = this.rows.filter((r) => !failed.has(r.entry));
      const reasons = this.criteria.check(live.map((r) => ({ config: r.entry.request.config, generated: r.generated, stream: r.stream })));
      const keep: number[] = [];
      const going: Row[] = [];
      let checked = 0;
      this.rows.forEach((row, i) => {
        if (failed.has(row.entry)) return;
        const reason = reasons[checked++] ?? (row.entry.request.signal?.aborted ? 'length' : undefined);
        if (reason !== undefined) return this.finish(row, reason);
        const { onText } = row.entry.request;
        if (onText && row.sample === 0) {
          const delta = row.stream.delta();
          if (delta) onText(delta);
        }
        keep.push(i);
        going.push(row);
      });
      const left = this.rows.length - going.length;
      this.rows = going;
      // Room freed: with overlapPrefill, the next newcomers prefill while this step decodes.
      if (this.overlap && !this.prefill && this.pending.length > 0) {
        const group = this.admit();
        if (group.length > 0) this.startPrefill(group);
      }
      if (going.length === 0) {
        this.model = undefined;
        this.options.onStep?.({ rows: 0, joined, left });
        continue;
      }
      const model = this.model as M;
      if (left > 0) model.select(keep);
      try {
        const logits = await model.next(going.map((r) => r.all[r.all.length - 1] as number));
        going.forEach((row, i) => (row.logits = logits[i] as Float32Array));
      } catch (err) {
        // A failed step fails the rows in it; the loop goes on with the next requests.
        const entries = new Set(going.map((r) => r.entry));
        this.rows = [];
        this.model = undefined;
        this.release([...entries]);
        for (const e of entries) e.reject(err);
      }
      this.options.onStep?.({ rows: going.length, joined, left });
    }
  }
}
