/**
 * The only file that imports onnxruntime-node. Everything else sees {@link Session}.
 */
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
}

export interface Session {
  /** The device the session actually runs on (after any fallback). */
  readonly device: Device;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Declared type and dimensions of every input, in `inputNames` order. */
  readonly inputInfo: readonly TensorInfo[];
  /** Runs the graph. Outputs are copied out of onnxruntime's buffers, so they stay valid. */
  run(feeds: Record<string, Tensor>, outputNames?: readonly string[]): Promise<Record<string, FloatTensor>>;
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

async function open(path: string, device: Device, intraOpThreads: number): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(path, {
    executionProviders: device === 'cpu' ? ['cpu'] : [device],
    intraOpNumThreads: intraOpThreads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  });
}

export async function createSession(path: string, options: SessionOptions = {}): Promise<Session> {
  const { device, intraOpThreads, onFallback } = { device: 'cpu' as Device, intraOpThreads: 0, ...options };
  let used: Device = device;
  let session: ort.InferenceSession;
  try {
    session = await open(path, device, intraOpThreads);
  } catch (err) {
    if (device === 'cpu') throw err;
    onFallback?.(device, err instanceof Error ? err.message : String(err));
    used = 'cpu';
    session = await open(path, 'cpu', intraOpThreads);
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
