/** Ambient types for the DICOM codec packages, which ship none (see dicom-codecs.ts for how they are used). */
declare module '@cornerstonejs/codec-libjpeg-turbo-8bit/decode' {
  const factory: (options?: object) => Promise<Record<string, unknown>>;
  export default factory;
}
declare module '@cornerstonejs/codec-charls/decode' {
  const factory: (options?: object) => Promise<Record<string, unknown>>;
  export default factory;
}
declare module '@cornerstonejs/codec-openjpeg/decode' {
  const factory: (options?: object) => Promise<Record<string, unknown>>;
  export default factory;
}
declare module 'jpeg-lossless-decoder-js' {
  export class Decoder {
    decode(buffer: ArrayBuffer, offset: number, length: number, numBytes?: number): Uint8Array | Uint16Array;
  }
}
declare module '@cornerstonejs/codec-libjpeg-turbo-8bit' {
  const factory: (options?: object) => Promise<Record<string, unknown>>;
  export default factory;
}
declare module '@cornerstonejs/codec-charls' {
  const factory: (options?: object) => Promise<Record<string, unknown>>;
  export default factory;
}
