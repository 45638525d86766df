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
  bool: onnx.TensorProto.DataType.BOOL,
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
  | { kind: 'string'; value: string }
  | { kind: 'graph'; value: GraphBuilder };

/** Attribute helpers: `{ axis: attr.int(-1), epsilon: attr.float(1e-12) }`. */
export const attr = {
  int: (value: number): Attr => ({ kind: 'int', value }),
  float: (value: number): Attr => ({ kind: 'float', value }),
  ints: (value: number[]): Attr => ({ kind: 'ints', value }),
  floats: (value: number[]): Attr => ({ kind: 'floats', value }),
  string: (value: string): Attr => ({ kind: 'string', value }),
  /** A subgraph, e.g. the `then_branch` / `else_branch` of an `If` node (see {@link GraphBuilder.subgraph}). */
  graph: (value: GraphBuilder): Attr => ({ kind: 'graph', value }),
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
    case 'graph':
      return { name, type: AttrType.GRAPH, g: a.value.toGraphProto() };
  }
}

function valueInfo(name: string, elemType: ElemType, dims?: Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        ...(dims === undefined
          ? {}
          : { shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } }),
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

/** Names shared by a graph and its subgraphs: ONNX values are in one namespace. */
interface Scope {
  names: Set<string>;
  constants: Map<string, string>;
  anonymous: number;
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
  /** Values this graph can read: its own and, for a subgraph, those of the graphs around it. */
  private readonly visible: Set<string>;
  private readonly scope: Scope;

  /**
   * @param name - the graph's name (`graph.name`).
   * @param parent - for a subgraph: the graph it is nested in (see {@link subgraph}).
   */
  constructor(
    private readonly name: string,
    private readonly parent?: GraphBuilder,
  ) {
    this.scope = parent ? parent.scope : { names: new Set(), constants: new Map(), anonymous: 0 };
    this.visible = new Set(parent ? parent.visible : []);
  }

  /** The outermost graph: initializers and shared constants live there. */
  private get root(): GraphBuilder {
    return this.parent ? this.parent.root : this;
  }

  /**
   * A subgraph (e.g. a branch of `If`) that reads the values of this graph (outer scope)
   * produced so far. Its initializers and constants are stored in the outermost graph.
   */
  subgraph(name: string): GraphBuilder {
    return new GraphBuilder(name, this);
  }

  private claim(name: string): string {
    if (this.scope.names.has(name)) throw new Error(`onnx-graph: duplicate value name "${name}"`);
    this.scope.names.add(name);
    this.visible.add(name);
    return name;
  }

  private publish(name: string): void {
    // Initializers live in the root but must be readable from the graph that made them.
    for (let g: GraphBuilder | undefined = this; g; g = g.parent) g.visible.add(name);
  }

  /** Declares a graph input. Returns its name, to use as a node input. */
  input(name: string, elemType: ElemType, dims: Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), elemType, dims));
    return name;
  }

  /**
   * Declares a graph output; a node must produce a value of that name. `dims` may be left
   * out for subgraph outputs whose shape differs between branches.
   */
  output(name: string, elemType: ElemType, dims?: Dim[]): void {
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  /** Adds a float32 initializer of shape `dims` (row-major). Returns its name. */
  float(name: string, data: Float32Array, dims: number[]): string {
    const count = dims.reduce((a, b) => a * b, 1);
    if (count !== data.length) {
      throw new Error(`onnx-graph: initializer "${name}" has ${data.length} values, shape [${dims.join(',')}] needs ${count}`);
    }
    const root = this.root;
    root.initializers.push({ name: root.claim(name), dataType: ElemType.float32, dims, rawData: littleEndianBytes(data) });
    this.publish(name);
    return name;
  }

  /** Adds an int64 initializer of shape `dims` (`[]` for a scalar). Returns its name. */
  int64(name: string, values: number[], dims: number[] = [values.length]): string {
    const data = BigInt64Array.from(values, (v) => BigInt(v));
    const root = this.root;
    root.initializers.push({ name: root.claim(name), dataType: ElemType.int64, dims, rawData: littleEndianBytes(data) });
    this.publish(name);
    return name;
  }

  /** A shared float32 scalar constant (one initializer per distinct value). */
  scalar(value: number): string {
    const key = `f:${value}`;
    let name = this.scope.constants.get(key);
    if (name === undefined) {
      name = this.root.float(`const_f32_${this.scope.constants.size}`, Float32Array.of(value), []);
      this.scope.constants.set(key, name);
    }
    this.publish(name);
    return name;
  }

  /** A shared int64 constant: a scalar for a number, a 1-D tensor for an array. */
  ints(value: number | number[]): string {
    const key = `i:${JSON.stringify(value)}`;
    let name = this.scope.constants.get(key);
    if (name === undefined) {
      const label = `const_i64_${this.scope.constants.size}`;
      name = typeof value === 'number' ? this.root.int64(label, [value], []) : this.root.int64(label, value);
      this.scope.constants.set(key, name);
    }
    this.publish(name);
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
    const { output, ...rest } = options;
    const [out] = this.nodeMulti(opType, inputs, output === undefined ? 1 : [output], rest);
    return out as string;
  }

  /**
   * Adds a node with several outputs (`If`, `Split`): `outputs` is either their names or
   * their number (then named `<name>_output_<i>`). Returns the output names.
   */
  nodeMulti(
    opType: string,
    inputs: string[],
    outputs: number | string[],
    options: { name?: string; attrs?: Record<string, Attr> } = {},
  ): string[] {
    const nodeName = options.name ?? `/${opType}_${this.scope.anonymous++}`;
    for (const input of inputs) {
      if (input !== '' && !this.visible.has(input)) {
        throw new Error(`onnx-graph: node "${nodeName}" reads "${input}", which nothing produced yet`);
      }
    }
    const names = typeof outputs === 'number' ? Array.from({ length: outputs }, (_, i) => `${nodeName}_output_${i}`) : outputs;
    for (const n of names) this.claim(n);
    this.nodes.push({
      name: nodeName,
      opType,
      input: inputs,
      output: names,
      attribute: Object.entries(options.attrs ?? {}).map(([k, a]) => toAttributeProto(k, a)),
    });
    return names;
  }

  /** The graph as an `onnx.GraphProto` (what a subgraph attribute holds). */
  toGraphProto(): onnxProto.onnx.IGraphProto {
    const produced = new Set([...this.nodes.flatMap((n) => n.output ?? []), ...this.inputs.map((i) => i.name ?? '')]);
    for (const out of this.outputs) {
      if (!produced.has(out.name ?? '')) throw new Error(`onnx-graph: no node produces output "${out.name}"`);
    }
    return {
      name: this.name,
      node: this.nodes,
      initializer: this.initializers,
      input: this.inputs,
      output: this.outputs,
    };
  }

  /** Encodes the graph as the bytes of a `.onnx` file. */
  toModelBytes(meta: ModelMetadata = {}): Uint8Array {
    if (this.parent) throw new Error('onnx-graph: encode the outermost graph, not a subgraph');
    const model: onnxProto.onnx.IModelProto = {
      irVersion: meta.irVersion ?? 8,
      opsetImport: [{ domain: '', version: meta.opsetVersion ?? 17 }],
      producerName: meta.producerName ?? 'inferq-tiny-models',
      producerVersion: meta.producerVersion ?? '0.1.0',
      docString: meta.docString ?? '',
      graph: this.toGraphProto(),
    };
    return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
  }
}
