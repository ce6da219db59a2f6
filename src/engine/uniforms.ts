/**
 * Packs kernel uniforms into 32-bit words in WGSL struct order. Kernels declare the matching struct;
 * arrays are `array<vec4<u32>, N>` (16-byte stride, as uniform address space requires), so the
 * writer pads to 16 bytes before each array.
 */
export class UniformWriter {
  private words: number[] = [];
  private kinds: ('u' | 'i' | 'f')[] = [];

  u32(...values: number[]): this {
    for (const v of values) this.push('u', v);
    return this;
  }
  i32(...values: number[]): this {
    for (const v of values) this.push('i', v);
    return this;
  }
  f32(...values: number[]): this {
    for (const v of values) this.push('f', v);
    return this;
  }
  /** An `array<vec4<u32>, vec4Count>` holding `values` padded with `fill`. */
  u32Array(values: readonly number[], vec4Count: number, fill = 0): this {
    this.alignTo(4);
    if (values.length > vec4Count * 4) throw new Error(`uniform array of ${values.length} exceeds ${vec4Count * 4}`);
    for (let i = 0; i < vec4Count * 4; i++) this.push('u', i < values.length ? values[i] : fill);
    return this;
  }

  private push(kind: 'u' | 'i' | 'f', v: number): void {
    this.words.push(v);
    this.kinds.push(kind);
  }
  private alignTo(words: number): void {
    while (this.words.length % words !== 0) this.push('u', 0);
  }

  /** Bytes, padded to a multiple of 16 as uniform buffers bind in 16-byte units. */
  finish(): Uint32Array {
    this.alignTo(4);
    const out = new Uint32Array(Math.max(4, this.words.length));
    const f = new Float32Array(out.buffer);
    const i = new Int32Array(out.buffer);
    this.words.forEach((v, k) => {
      const kind = this.kinds[k];
      if (kind === 'f') f[k] = v;
      else if (kind === 'i') i[k] = v;
      else out[k] = v >>> 0;
    });
    return out;
  }
}

/** Maximum tensor rank the strided kernels handle (two vec4 of dims). */
export const MAX_RANK = 8;
export const RANK_VEC4 = MAX_RANK / 4;
