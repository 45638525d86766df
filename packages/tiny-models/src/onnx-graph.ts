/**
 * A small builder for ONNX graphs over `onnx-proto`: float and int64 initializers, nodes
 * with typed attributes, graph inputs and outputs with symbolic dimensions
 * (`batch_size`, `sequence_length`), and encoding to the bytes of a `model.onnx`.
 */
import { endianness } from 'node:os';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** Element types used by the models we build (values of `onnx.TensorProto.DataType`). */
export const ElemType = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
} as const;
export type ElemType = (typeof ElemType)[keyof typeof ElemType];

/** A dimension: a fixed size, or a symbolic name such as `batch_size`. */
export type Dim = number | string;

/** A node attribute with its ONNX type spelled out (a JS number can't say int or float). */
export type Attr =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'ints'; value: number[] }
  | { kind: 'floats'; value: number[] }
  | { kind: 'string'; value: string };

/** Attribute helpers: `{ axis: attr.int(-1), epsilon: attr.float(1e-12) }`. */
export const attr = {
  int: (value: number): Attr => ({ kind: 'int', value }),
  float: (value: number): Attr => ({ kind: 'float', value }),
  ints: (value: number[]): Attr => ({ kind: 'ints', value }),
  floats: (value: number[]): Attr => ({ kind: 'floats', value }),
  string: (value: string): Attr => ({ kind: 'string', value }),
};

/** Options of {@link GraphBuilder.toModelBytes}. */
export interface ModelMetadata {
  /** ONNX IR version. @defaultValue 8 */
  irVersion?: number;
  /** Version of the default (`ai.onnx`) operator set. @defaultValue 17 */
  opsetVersion?: number;
  /** `producer_name` of the model. @defaultValue "inferq-tiny-models" */
  producerName?: string;
  /** `producer_version` of the model. @defaultValue "0.1.0" */
  producerVersion?: string;
  /** Free-text description stored in `doc_string`. @defaultValue "" */
  docString?: string;
}

const AttrType = onnx.AttributeProto.AttributeType;

function toAttributeProto(name: string, a: Attr): onnxProto.onnx.IAttributeProto {
  switch (a.kind) {
    case 'int':
      return { name, type: AttrType.INT, i: a.value };
    case 'float':
      return { name, type: AttrType.FLOAT, f: a.value };
    case 'ints':
      return { name, type: AttrType.INTS, ints: a.value };
    case 'floats':
      return { name, type: AttrType.FLOATS, floats: a.value };
    case 'string':
      return { name, type: AttrType.STRING, s: new TextEncoder().encode(a.value) };
  }
}

function valueInfo(name: string, elemType: ElemType, dims: Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function littleEndianBytes(data: Float32Array | BigInt64Array): Uint8Array {
  if (endianness() !== 'LE') {
    throw new Error('onnx-graph: raw tensor data is written little-endian; this host is big-endian');
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Builds one ONNX graph. Nodes are added in topological order (each node's inputs must
 * already exist), which is what ONNX requires of a graph's node list.
 */
export class GraphBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly names = new Set<string>();
  private readonly constants = new Map<string, string>();
  private anonymous = 0;

  /** @param name - the graph's name (`graph.name`). */
  constructor(private readonly name: string) {}

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`onnx-graph: duplicate value name "${name}"`);
    this.names.add(name);
    return name;
  }

  /** Declares a graph input. Returns its name, to use as a node input. */
  input(name: string, elemType: ElemType, dims: Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), elemType, dims));
    return name;
  }

  /** Declares a graph output; a node must produce a value of that name. */
  output(name: string, elemType: ElemType, dims: Dim[]): void {
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  /** Adds a float32 initializer of shape `dims` (row-major). Returns its name. */
  float(name: string, data: Float32Array, dims: number[]): string {
    const count = dims.reduce((a, b) => a * b, 1);
    if (count !== data.length) {
      throw new Error(`onnx-graph: initializer "${name}" has ${data.length} values, shape [${dims.join(',')}] needs ${count}`);
    }
    this.initializers.push({ name: this.claim(name), dataType: ElemType.float32, dims, rawData: littleEndianBytes(data) });
    return name;
  }

  /** Adds an int64 initializer of shape `dims` (`[]` for a scalar). Returns its name. */
  int64(name: string, values: number[], dims: number[] = [values.length]): string {
    const data = BigInt64Array.from(values, (v) => BigInt(v));
    this.initializers.push({ name: this.claim(name), dataType: ElemType.int64, dims, rawData: littleEndianBytes(data) });
    return name;
  }

  /** A shared float32 scalar constant (one initializer per distinct value). */
  scalar(value: number): string {
    const key = `f:${value}`;
    let name = this.constants.get(key);
    if (name === undefined) {
      name = this.float(`const_f32_${this.constants.size}`, Float32Array.of(value), []);
      this.constants.set(key, name);
    }
    return name;
  }

  /** A shared int64 constant: a scalar for a number, a 1-D tensor for an array. */
  ints(value: number | number[]): string {
    const key = `i:${JSON.stringify(value)}`;
    let name = this.constants.get(key);
    if (name === undefined) {
      const label = `const_i64_${this.constants.size}`;
      name = typeof value === 'number' ? this.int64(label, [value], []) : this.int64(label, value);
      this.constants.set(key, name);
    }
    return name;
  }

  /**
   * Adds a node with one output and returns that output's name. The node is named
   * `name` (or `/<opType>_<n>`) and its output `<name>_output_0`, as torch.onnx does,
   * unless `output` names it (for graph outputs such as `logits`).
   */
  node(
    opType: string,
    inputs: string[],
    options: { name?: string; attrs?: Record<string, Attr>; output?: string } = {},
  ): string {
    const nodeName = options.name ?? `/${opType}_${this.anonymous++}`;
    const output = this.claim(options.output ?? `${nodeName}_output_0`);
    for (const input of inputs) {
      if (input !== '' && !this.names.has(input)) {
        throw new Error(`onnx-graph: node "${nodeName}" reads "${input}", which nothing produced yet`);
      }
    }
    this.nodes.push({
      name: nodeName,
      opType,
      input: inputs,
      output: [output],
      attribute: Object.entries(options.attrs ?? {}).map(([k, a]) => toAttributeProto(k, a)),
    });
    return output;
  }

  /** Encodes the graph as the bytes of a `.onnx` file. */
  toModelBytes(meta: ModelMetadata = {}): Uint8Array {
    const produced = new Set(this.nodes.flatMap((n) => n.output ?? []));
    for (const out of this.outputs) {
      if (!produced.has(out.name ?? '')) throw new Error(`onnx-graph: no node produces output "${out.name}"`);
    }
    const model: onnxProto.onnx.IModelProto = {
      irVersion: meta.irVersion ?? 8,
      opsetImport: [{ domain: '', version: meta.opsetVersion ?? 17 }],
      producerName: meta.producerName ?? 'inferq-tiny-models',
      producerVersion: meta.producerVersion ?? '0.1.0',
      docString: meta.docString ?? '',
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    };
    return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
  }
}
