/** Output writers for generated clips (browser-safe: arrays in, bytes out). */
export { writeNifti, type NiftiWriteOptions, type ClipDims } from './nifti';
export { sideBySideGif, type SideBySideOptions } from './gif';
