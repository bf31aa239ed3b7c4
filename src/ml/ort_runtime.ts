/**
 * onnxruntime-web in this process: what the host offers, what the engine
 * uses, and the one place sessions are created.
 *
 * The WASM backend is the one that runs everywhere Deno does; onnxruntime-web
 * 1.30 ships only SIMD builds of it, so a host without WASM SIMD cannot run
 * models at all and is refused at boot. WebGPU is reported when the host has an
 * adapter but not used: the models are small trees whose cost is the call, not
 * arithmetic, and the JSEP/WebGPU build is not exercised by Deno's runtime.
 *
 * @module
 */
import * as ort from "onnxruntime-web";

/** What the host offers. */
export interface HostCapabilities {
  /** WebAssembly fixed-width SIMD validates. */
  wasmSimd: boolean;
  /** SharedArrayBuffer and WASM atomics exist (multi-threaded WASM is possible). */
  wasmThreads: boolean;
  /** `navigator.gpu` exists. */
  webgpu: boolean;
}

/** What the engine chose, and the host it chose it on. */
export interface RuntimeInfo {
  /** onnxruntime-web version. */
  ortVersion: string;
  /** Host capabilities. */
  host: HostCapabilities;
  /** The execution provider, backend build and thread count in use. */
  chosen: { executionProvider: "wasm"; simd: true; numThreads: number };
}

// A module whose one function uses v128 (i32x4.splat): validates only with SIMD.
const SIMD_PROBE: Uint8Array<ArrayBuffer> = new Uint8Array([
  0,
  97,
  115,
  109,
  1,
  0,
  0,
  0,
  1,
  5,
  1,
  96,
  0,
  1,
  123,
  3,
  2,
  1,
  0,
  10,
  10,
  1,
  8,
  0,
  65,
  0,
  253,
  15,
  253,
  98,
  11,
]);
// A module with a shared memory and an atomic.fence: validates only with threads.
const THREADS_PROBE: Uint8Array<ArrayBuffer> = new Uint8Array([
  0,
  97,
  115,
  109,
  1,
  0,
  0,
  0,
  1,
  4,
  1,
  96,
  0,
  0,
  3,
  2,
  1,
  0,
  5,
  4,
  1,
  3,
  1,
  1,
  10,
  11,
  1,
  9,
  0,
  65,
  0,
  254,
  16,
  2,
  0,
  26,
  11,
]);

/** Probe the host. */
export function detectHost(): HostCapabilities {
  const validates = (bytes: Uint8Array<ArrayBuffer>) => {
    try {
      return WebAssembly.validate(bytes);
    } catch {
      return false;
    }
  };
  return {
    wasmSimd: validates(SIMD_PROBE),
    wasmThreads: typeof SharedArrayBuffer === "function" && validates(THREADS_PROBE),
    webgpu: typeof navigator === "object" && navigator !== null && "gpu" in navigator &&
      (navigator as { gpu?: unknown }).gpu !== undefined,
  };
}

/** Options of {@linkcode OrtRuntime.create}. */
export interface OrtRuntimeOptions {
  /** WASM threads; 1 keeps inference on the calling thread (no workers). */
  numThreads: number;
}

/** The configured onnxruntime-web: create sessions through it. */
export class OrtRuntime {
  /** What the host offers and what was chosen. */
  readonly info: RuntimeInfo;

  private constructor(info: RuntimeInfo) {
    this.info = info;
  }

  /**
   * Configure onnxruntime-web once for this process.
   *
   * @param options thread count
   * @throws Error when the host has no WASM SIMD
   */
  static create(options: OrtRuntimeOptions): OrtRuntime {
    if (!Number.isInteger(options.numThreads) || options.numThreads < 1) {
      throw new RangeError(`Invalid numThreads: ${String(options.numThreads)}`);
    }
    const host = detectHost();
    if (!host.wasmSimd) {
      throw new Error("Cannot run ONNX models: this host has no WebAssembly SIMD");
    }
    const numThreads = host.wasmThreads ? options.numThreads : 1;
    ort.env.wasm.numThreads = numThreads;
    ort.env.wasm.proxy = false;
    ort.env.logLevel = "error";
    return new OrtRuntime({
      ortVersion: ort.env.versions.web ?? "unknown",
      host,
      chosen: { executionProvider: "wasm", simd: true, numThreads },
    });
  }

  /**
   * A session for a model's bytes.
   *
   * @param bytes the `.onnx` file
   */
  createSession(bytes: Uint8Array): Promise<ort.InferenceSession> {
    return ort.InferenceSession.create(bytes, {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
    });
  }
}

/** A float32 tensor of shape [rows, width]. */
export function float32Tensor(data: Float32Array, rows: number, width: number): ort.Tensor {
  return new ort.Tensor("float32", data, [rows, width]);
}

export type { InferenceSession, Tensor } from "onnxruntime-web";
