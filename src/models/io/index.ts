/** Weight-file IO: torch.save checkpoints, safetensors, state-dict helpers. Browser-safe (bytes in, bytes out). */
export { WeightsError } from './errors';
export { HostTensor, castTensor, dtypeByteSize, halfBitsToFloat, floatToHalfBits, bf16BitsToFloat, floatToBf16Bits, HOST_DTYPES } from './tensor';
export type { HostDType, HostTypedArray } from './tensor';
export { readPth } from './pth';
export type { PthFile, ReadPthOptions } from './pth';
export { PyObject, PyGlobal, isTuple } from './pickle';
export type { PyValue, PyDict } from './pickle';
export { readSafetensors, writeSafetensors } from './safetensors';
export type { SafetensorsFile, TensorSource } from './safetensors';
export {
  extractStateDict, stripPrefix, extractEcgEncoderStateDict, isStateDict, getEntry, describeEntries, summarizeStateDict, toFloat32StateDict,
  STATE_DICT_SEARCH_ORDER, ENCODER_PREFIX,
} from './state-dict';
export type { StateDict, Float32HostTensor, ExtractOptions, StripPrefixOptions, EcgEncoderOptions, StateDictSummary } from './state-dict';
