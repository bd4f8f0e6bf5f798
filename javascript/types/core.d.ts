// Hand-written declarations of Heron's JavaScript core (lib/index.js); index.d.ts (generated) adds
// one function per op and the op methods of Tensor.

export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int8' | 'uint8' | 'int32' | 'int64' | 'bool';
export type HostArray = Float32Array | Float64Array | Int8Array | Uint8Array | Int32Array | BigInt64Array;
type Nested = number | boolean | bigint | Nested[];

export interface HeronError extends Error {
  /** HERON_ERR_* */
  code: string;
  /** The ABI status code. */
  status: number;
  /** The op the error happened in, or "". */
  op: string;
}

export class Tensor {
  private constructor();
  readonly shape: number[];
  readonly ndim: number;
  readonly numel: number;
  readonly dtype: DType;
  readonly device: string;
  requiresGrad: boolean;
  grad: Tensor | null;
  readonly isLeaf: boolean;
  readonly gradFn: string | null;
  toArray(): HostArray;
  toNested(): Nested;
  item(): number | bigint | boolean;
  backward(grad?: Tensor | null, options?: { retainGraph?: boolean }): void;
  detach(): Tensor;
  zeroGrad(): void;
  retainGrad(): void;
  requiresGrad_(v?: boolean): this;
  release(): void;
}

export function tensor(data: HostArray | Nested, options?: { shape?: number[]; dtype?: DType; device?: string; requiresGrad?: boolean }): Tensor;
export const dtypes: DType[];
export function isGradEnabled(): boolean;
export function setGradEnabled(enabled: boolean): boolean;
export function noGrad<T>(fn: () => T): T;
export function backward(tensors: Tensor | Tensor[], grads?: Tensor | (Tensor | null)[] | null, options?: { retainGraph?: boolean }): void;
export function grad(outputs: Tensor | Tensor[], inputs: Tensor | Tensor[],
  options?: { gradOutputs?: (Tensor | null)[]; retainGraph?: boolean; allowUnused?: boolean }): (Tensor | null)[];

declare class SGD {
  constructor(params: Iterable<Tensor>, options?: { lr?: number; momentum?: number; dampening?: number; weightDecay?: number;
    nesterov?: boolean; maximize?: boolean });
  step(): void;
  zeroGrad(): void;
}
declare class Adam {
  constructor(params: Iterable<Tensor>, options?: { lr?: number; betas?: [number, number]; eps?: number; weightDecay?: number;
    amsgrad?: boolean; maximize?: boolean; decoupledWeightDecay?: boolean });
  step(): void;
  zeroGrad(): void;
}
export const optim: { SGD: typeof SGD; Adam: typeof Adam };

export function loadSafetensors(source: string | ArrayBufferView | ArrayBuffer): Record<string, Tensor>;
export function saveSafetensors(tensors: Record<string, Tensor>, path?: string | null, metadata?: Record<string, string> | null): Buffer | undefined;

export interface ValueInfo { name: string; dtype: DType; shape: number[] }
export class Model {
  constructor(source: string | ArrayBufferView | ArrayBuffer);
  readonly inputs: ValueInfo[];
  readonly outputs: ValueInfo[];
  text(): string;
  save(path: string): void;
  release(): void;
}
export class Session {
  constructor(model: Model | string | ArrayBufferView | ArrayBuffer,
    options?: { device?: string; threads?: number; profiling?: boolean; optimize?: boolean; arena?: boolean; microbatch?: boolean });
  readonly inputNames: string[];
  readonly outputNames: string[];
  readonly model: Model;
  run(feeds: Record<string, Tensor>, outputNames?: string[] | null): Record<string, Tensor>;
  runAsync(feeds: Record<string, Tensor>, outputNames?: string[] | null): Promise<Record<string, Tensor>>;
  profile(): unknown;
  chromeTrace(): unknown;
  clearProfile(): void;
  peakMemory(): { last: number; max: number };
  release(): void;
}

export function deviceTypes(): string[];
export function deviceCount(name: string): number;
export function manualSeed(seed: number | bigint): void;
export function setNumThreads(n: number): void;
export function getNumThreads(): number;
export function liveHandles(): number;
export function opNames(): string[];
/** The generic op call: schema names, attributes by schema name (plain or tagged values). */
export function callOp(name: string, inputs: (Tensor | number | null)[], attrs?: Record<string, unknown>): Tensor | Tensor[];
export const version: string;
export const abiVersion: number;
