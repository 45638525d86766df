/**
 * The only file that imports onnxruntime-node (here, and in the session thread's source
 * below). Everything else sees {@link Session}.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

export type Device = 'cpu' | 'webgpu' | 'cuda';

export type TensorType = 'int64' | 'float32' | 'bool';

/** A plain tensor: data in row-major order and its dims, e.g. `[batch, seqLen]`. */
export interface Tensor {
  type: TensorType;
  data: BigInt64Array | Float32Array | Uint8Array;
  dims: readonly number[];
}

export interface FloatTensor {
  data: Float32Array;
  dims: readonly number[];
}

/** What a graph declares about one of its inputs. */
export interface TensorInfo {
  name: string;
  /** Element type (`float32`, `int64`, `bool`, ...); undefined for a non-tensor value. */
  type: string | undefined;
  /** Declared dimensions: a number, or a symbolic name such as `batch_size`. Empty when unknown. */
  dims: readonly (number | string)[];
}

export interface SessionOptions {
  /** Execution provider to ask for first; CPU is the fallback. @defaultValue 'cpu' */
  device?: Device;
  /** Threads inside one operator (onnxruntime intra-op). 0 lets onnxruntime choose. @defaultValue 0 */
  intraOpThreads?: number;
  /** Called once when the requested device can't be used and the session falls back to CPU. */
  onFallback?: (requested: Device, reason: string) => void;
  /**
   * Run the graph on a worker thread of its own. onnxruntime-node's `run` is synchronous:
   * on the caller's thread it blocks that event loop for the whole run, so a worker could
   * not fetch a job, renew a lock or tokenize the next batch while a batch runs. On a
   * thread, inputs are copied to it and outputs moved back (no copy). The generating
   * pipelines default to false: a decoding step is short and the event loop runs between
   * steps, while copying a KV cache (and an encoder's states) to the thread every step
   * would cost more than the step. @defaultValue true
   */
  thread?: boolean;
  /**
   * Let onnxruntime's intra-op threads spin while they wait for work (onnxruntime's own
   * default). Off here by default: a worker runs several sessions next to an event loop that
   * must stay responsive, and spinning threads take the cores they need (see `ortOptions`).
   * @defaultValue false
   */
  spinning?: boolean;
  /**
   * With `thread`: the Unix nice value (0 to 19) of the session thread, which its
   * onnxruntime threads inherit. Above 0, the event loop's thread wins the cores whenever it
   * has work, so a long run on the thread (a big prefill) delays it less. @defaultValue 0
   */
  niceness?: number;
}

export interface Session {
  /** The device the session actually runs on (after any fallback). */
  readonly device: Device;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Declared type and dimensions of every input, in `inputNames` order. */
  readonly inputInfo: readonly TensorInfo[];
  /**
   * Runs the graph. Outputs are copied out of onnxruntime's buffers, so they stay valid.
   * @param transfer - feeds the caller will not read again (a KV cache the outputs replace):
   *   a session thread takes their buffers instead of copying them; they are then detached.
   */
  run(feeds: Record<string, Tensor>, outputNames?: readonly string[], transfer?: readonly string[]): Promise<Record<string, FloatTensor>>;
  release(): Promise<void>;
}

/** Providers this build of onnxruntime-node can load without extra files. */
export function availableDevices(): Device[] {
  const known: Device[] = ['cpu', 'webgpu', 'cuda'];
  return ort
    .listSupportedBackends()
    .filter((b) => b.bundled || b.name === 'cuda')
    .map((b) => b.name as Device)
    .filter((name) => known.includes(name));
}

/**
 * The session options for a device, the same on the caller's thread and on a session thread.
 * onnxruntime's pool threads spin (busy-wait) between ops by default. A worker runs several
 * sessions at once (each model and task, plus the thread that serves them), and spinning
 * threads took the cores from the others and from the worker's event loop. Bench scenario 9
 * on 2 shared cores, three paired runs: single jobs' p95 during a 50-label zero-shot job
 * on another session 134 / 1,636 / 191 ms without spinning, 432 / 2,403 / 2,628 ms with it.
 * One session alone was no faster with it here (bench llama, 8 rows: 526-712 tokens/s
 * without, 153-315 with). So the threads sleep when idle unless a session asks (`spinning`).
 */
function ortOptions(device: Device, intraOpThreads: number, spinning = false): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: device === 'cpu' ? ['cpu'] : [device],
    intraOpNumThreads: intraOpThreads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    ...(spinning ? {} : { extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } } }),
  };
}

async function open(path: string, device: Device, intraOpThreads: number, spinning: boolean): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(path, ortOptions(device, intraOpThreads, spinning));
}

export async function createSession(path: string, options: SessionOptions = {}): Promise<Session> {
  const { device, intraOpThreads, onFallback, thread, spinning, niceness } = {
    device: 'cpu' as Device,
    intraOpThreads: 0,
    thread: true,
    spinning: false,
    niceness: 0,
    ...options,
  };
  if (thread) return ThreadSession.open(path, device, intraOpThreads, onFallback, spinning, niceness);
  let used: Device = device;
  let session: ort.InferenceSession;
  try {
    session = await open(path, device, intraOpThreads, spinning);
  } catch (err) {
    if (device === 'cpu') throw err;
    onFallback?.(device, err instanceof Error ? err.message : String(err));
    used = 'cpu';
    session = await open(path, 'cpu', intraOpThreads, spinning);
  }
  return new OrtSession(session, used);
}

class OrtSession implements Session {
  constructor(
    private readonly session: ort.InferenceSession,
    readonly device: Device,
  ) {}

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  get inputInfo(): readonly TensorInfo[] {
    return this.session.inputMetadata.map((m) => ({
      name: m.name,
      type: m.isTensor ? m.type : undefined,
      dims: m.isTensor ? [...m.shape] : [],
    }));
  }

  async run(feeds: Record<string, Tensor>, outputNames?: readonly string[]): Promise<Record<string, FloatTensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) {
      if (!this.session.inputNames.includes(name)) continue;
      ortFeeds[name] = new ort.Tensor(t.type, t.data, t.dims as number[]);
    }
    const results = outputNames
      ? await this.session.run(ortFeeds, outputNames as string[])
      : await this.session.run(ortFeeds);
    const out: Record<string, FloatTensor> = {};
    for (const [name, value] of Object.entries(results)) {
      if (value.type !== 'float32') throw new Error(`Output ${name} is ${value.type}; expected float32`);
      // A CPU output's data is a JS array nobody else holds: keep it (a KV cache is megabytes
      // per step). Any other location is read into a copy and released.
      if (value.location === 'cpu') {
        out[name] = { data: value.data as Float32Array, dims: [...value.dims] };
      } else {
        out[name] = { data: new Float32Array((await value.getData()) as Float32Array), dims: [...value.dims] };
        value.dispose();
      }
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** What the session thread answers to `open`. */
interface OpenedInfo {
  inputNames: string[];
  outputNames: string[];
  inputInfo: TensorInfo[];
}

type Reply = { id: number; ok: unknown } | { id: number; error: string };

/**
 * The session thread (CommonJS, run with `eval`, so that it needs no file of its own next
 * to either the TypeScript sources or the build). It opens one session with the options it
 * is sent, then runs it on request; outputs go back as transferred buffers.
 */
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ort);
let session;
async function open({ path, options, niceness }) {
  // Linux nice is per thread: this lowers the priority of this thread and of the threads
  // onnxruntime starts from it, not of the event loop's thread.
  if (niceness > 0) {
    try {
      require('node:os').setPriority(0, niceness);
    } catch {}
  }
  session = await ort.InferenceSession.create(path, options);
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    inputInfo: session.inputMetadata.map((m) => ({ name: m.name, type: m.isTensor ? m.type : undefined, dims: m.isTensor ? [...m.shape] : [] })),
  };
}
async function run({ feeds, outputNames }) {
  const ortFeeds = {};
  for (const [name, t] of Object.entries(feeds)) {
    if (session.inputNames.includes(name)) ortFeeds[name] = new ort.Tensor(t.type, t.data, t.dims);
  }
  const results = outputNames ? await session.run(ortFeeds, outputNames) : await session.run(ortFeeds);
  const out = {};
  const transfer = new Set();
  for (const [name, value] of Object.entries(results)) {
    if (value.type !== 'float32') throw new Error('Output ' + name + ' is ' + value.type + '; expected float32');
    const data = value.location === 'cpu' ? value.data : new Float32Array(await value.getData());
    out[name] = { data, dims: [...value.dims] };
    transfer.add(data.buffer);
  }
  return [out, [...transfer]];
}
parentPort.on('message', async (msg) => {
  try {
    if (msg.op === 'open') parentPort.postMessage({ id: msg.id, ok: await open(msg) });
    else if (msg.op === 'run') {
      const [out, transfer] = await run(msg);
      parentPort.postMessage({ id: msg.id, ok: out }, transfer);
    } else if (msg.op === 'release') {
      await session?.release();
      session = undefined;
      parentPort.postMessage({ id: msg.id, ok: true });
    }
  } catch (err) {
    parentPort.postMessage({ id: msg.id, error: err && err.message ? err.message : String(err) });
  }
});
`;

/**
 * A session on a worker thread of its own ({@link SessionOptions.thread}). Calls are
 * answered in order; the thread holds the process open only while a call is pending.
 */
class ThreadSession implements Session {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private info!: OpenedInfo;
  private dead: Error | undefined;
  private used: Device = 'cpu';

  private constructor(private readonly worker: Worker) {
    worker.on('message', (reply: Reply) => {
      const call = this.pending.get(reply.id);
      if (!call) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      if ('error' in reply) call.reject(new Error(reply.error));
      else call.resolve(reply.ok);
    });
    const fail = (err: Error): void => {
      this.dead ??= err;
      for (const call of this.pending.values()) call.reject(err);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`The session thread exited (code ${code})`)));
    worker.unref();
  }

  static async open(
    path: string,
    device: Device,
    threads: number,
    onFallback?: (requested: Device, reason: string) => void,
    spinning = false,
    niceness = 0,
  ): Promise<ThreadSession> {
    const ortEntry = createRequire(import.meta.url).resolve('onnxruntime-node');
    const session = new ThreadSession(new Worker(THREAD_SOURCE, { eval: true, workerData: { ort: ortEntry } }));
    try {
      try {
        session.info = (await session.call({ op: 'open', path, options: ortOptions(device, threads, spinning), niceness })) as OpenedInfo;
        session.used = device;
      } catch (err) {
        if (device === 'cpu') throw err;
        onFallback?.(device, err instanceof Error ? err.message : String(err));
        session.info = (await session.call({ op: 'open', path, options: ortOptions('cpu', threads, spinning), niceness })) as OpenedInfo;
      }
      return session;
    } catch (err) {
      await session.worker.terminate();
      throw err;
    }
  }

  get device(): Device {
    return this.used;
  }

  get inputNames(): readonly string[] {
    return this.info.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.info.outputNames;
  }

  get inputInfo(): readonly TensorInfo[] {
    return this.info.inputInfo;
  }

  async run(feeds: Record<string, Tensor>, outputNames?: readonly string[], transfer: readonly string[] = []): Promise<Record<string, FloatTensor>> {
    // Structured clone copies the feeds' arrays (the caller keeps its own), except those the
    // caller hands over: their buffers move to the thread.
    const moved = new Set<ArrayBuffer>();
    for (const name of transfer) {
      const buffer = feeds[name]?.data.buffer;
      if (buffer instanceof ArrayBuffer && buffer.byteLength > 0) moved.add(buffer);
    }
    return (await this.call({ op: 'run', feeds, outputNames }, [...moved])) as Record<string, FloatTensor>;
  }

  async release(): Promise<void> {
    if (!this.dead) await this.call({ op: 'release' });
    await this.worker.terminate();
  }

  private call(message: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<unknown> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ ...message, id }, transfer);
    });
  }
}
