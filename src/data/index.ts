/** Public API of the data layer (browser-safe; Node file access is in ./node-fs, pictures in ./viz). */
export { DataError, assertFinite } from './errors';
export { type DataFileSystem, MemoryFileSystem, joinPath } from './fs';
export { Rng, hashSeed, seededPermutation } from './random';
export * from './npy';
export * from './phantom/params';
export { synthesizeEcg, leadsFromElectrodes, LEAD_NAMES, ECG_FS, ECG_SAMPLES, type LeadName, type PhantomEcg, type EcgRhythmOptions } from './phantom/ecg';
export { renderCine, contractionAt, CINE_FRAMES, CINE_SIZE, type PhantomCine } from './phantom/cine';
export * from './phantom/subject';
export * from './ecg-phase';
export * from './preprocess/ecg';
export * from './preprocess/cmr';
export { parseWfdb, parseWfdbHeader, readWfdb, type WfdbHeader, type WfdbRecording } from './readers/wfdb';
export { parseEcgCsv, type CsvOptions } from './readers/csv';
export { readNifti, type NiftiOptions } from './readers/nifti';
export { readDicomSeries, type DicomOptions } from './readers/dicom';
export { readEcgFile, readCmrFile, ecgFromNpy } from './readers/index';
export * from './dataset';
export * from './loader';
