/**
 * torch.save checkpoints (the zip format, default since PyTorch 1.6): `<archive>/data.pkl` holds
 * the object graph as a pickle whose tensors point, via persistent ids, at raw little-endian
 * storage files `<archive>/data/<key>`. We rebuild the graph with our own pickle VM and copy every
 * tensor view out of its storage into a contiguous C-order HostTensor.
 */
import { WeightsError, withName } from './errors';
import { PyGlobal, PyObject, PyOpaque, isTuple, unpickle, type PyDict, type PyValue } from './pickle';
import { HostTensor, allocTyped, dtypeByteSize, shapeNumel, typedFromBytes, type HostDType, type HostTypedArray } from './tensor';
import { extractZipEntry, isZip, readCentralDirectory, ZipFormatError, type ZipEntry } from '../../data/readers/zip-archive';

export interface PthFile {
  /** The unpickled object: a state dict (Map), a checkpoint dict of dicts, or a bare tensor. */
  root: PyValue;
  /** Top folder inside the zip, which torch names after the file stem. */
  archiveName: string;
  byteOrder: 'little' | 'big';
  /** Number of distinct storage records the pickle referenced. */
  storageCount: number;
}

export interface ReadPthOptions {
  /** File name, used only to make error messages point at the right file. */
  name?: string;
}

const STORAGE_DTYPES: Record<string, HostDType> = {
  FloatStorage: 'f32', HalfStorage: 'f16', BFloat16Storage: 'bf16', DoubleStorage: 'f64',
  LongStorage: 'i64', IntStorage: 'i32', ShortStorage: 'i16', CharStorage: 'i8',
  ByteStorage: 'u8', BoolStorage: 'bool', UntypedStorage: 'u8',
};

const TORCH_DTYPES: Record<string, HostDType> = {
  float32: 'f32', float: 'f32', float16: 'f16', half: 'f16', bfloat16: 'bf16', float64: 'f64', double: 'f64',
  int64: 'i64', long: 'i64', int32: 'i32', int: 'i32', int16: 'i16', short: 'i16', int8: 'i8', uint8: 'u8', bool: 'bool',
};

interface StorageRecord {
  key: string;
  dtype: HostDType;
  numel: number;
  location: string;
  /** Decoded lazily and shared by every tensor that views this storage. */
  cached?: HostTypedArray;
}

/** A torch dtype global (torch.float32, ...), as passed to _rebuild_tensor_v3. */
class TorchDTypeGlobal extends PyGlobal {
  constructor(module: string, name: string, readonly dtype: HostDType) {
    super(module, name);
  }
}

/** Legacy (pre-1.6) files start with a pickled magic number; even older ones are tar archives. */
function looksLikeLegacyTorch(bytes: Uint8Array): boolean {
  if (bytes.length >= 3 && bytes[0] === 0x80 && bytes[2] === 0x8a) return true;
  const ustar = bytes.length > 262 ? new TextDecoder().decode(bytes.subarray(257, 262)) : '';
  return ustar === 'ustar';
}

function byteSwap(bytes: Uint8Array, elementSize: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += elementSize) {
    for (let j = 0; j < elementSize; j++) out[i + j] = bytes[i + elementSize - 1 - j];
  }
  return out;
}

/** Sizes, strides and offsets: non-negative safe integers (torch never saves negative strides). */
function asIntList(value: PyValue, what: string): number[] {
  if (!Array.isArray(value)) throw new WeightsError(`${what} is not a tuple`);
  return value.map((v) => asIndex(v, what));
}

function asIndex(v: PyValue | undefined, what: string): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  throw new WeightsError(`${what} holds ${typeof v === 'bigint' || typeof v === 'number' ? String(v) : v === null ? 'None' : typeof v}, not a non-negative integer`);
}

/**
 * A tensor may be larger than the storage it views only through stride-0 (expanded) dimensions. Such
 * copies are allowed up to this factor over the storage (or 2^20 elements), so a corrupt size cannot
 * make us allocate gigabytes from a few bytes.
 */
const MAX_EXPANSION = 64;
/** Total bytes of tensors copied out of one file, as a multiple of its size (or 64 MiB). */
const COPY_BUDGET_FACTOR = 16;
const MIN_EXPANDED_LIMIT = 2 ** 20;

/**
 * Copies a strided view out of a storage into a contiguous array. The innermost dimension is a
 * tight loop; outer dimensions are walked with an odometer so any rank works.
 */
function gatherStrided(source: HostTypedArray, dtype: HostDType, offset: number, size: number[], stride: number[]): HostTypedArray {
  // Bounds first, in exact integer arithmetic: nothing is allocated for a view the storage cannot hold.
  let numel = 1;
  let maxIndex = offset;
  for (let d = 0; d < size.length; d++) {
    numel *= size[d];
    if (size[d] > 0) maxIndex += (size[d] - 1) * stride[d];
  }
  if (numel > 0 && (!Number.isSafeInteger(maxIndex) || maxIndex >= source.length)) {
    throw new WeightsError(`tensor view (offset ${offset}, size [${size}], stride [${stride}]) exceeds its storage of ${source.length} elements`);
  }
  if (numel > Math.max(source.length * MAX_EXPANSION, MIN_EXPANDED_LIMIT)) {
    throw new WeightsError(`tensor view of ${numel} elements (size [${size}], stride [${stride}]) over a storage of ${source.length} elements: more than ${MAX_EXPANSION}× expansion, corrupt`);
  }
  const out = allocTyped(dtype, numel);
  if (numel === 0) return out;
  let contiguous = true;
  for (let d = size.length - 1, expect = 1; d >= 0; d--) {
    if (size[d] !== 1 && stride[d] !== expect) { contiguous = false; break; }
    expect *= size[d];
  }
  if (contiguous) {
    (out as Uint8Array).set((source as Uint8Array).subarray(offset, offset + numel));
    return out;
  }
  const rank = size.length;
  const inner = size[rank - 1];
  const innerStride = stride[rank - 1];
  const index = new Array<number>(Math.max(rank - 1, 0)).fill(0);
  const src = source as unknown as { [i: number]: number | bigint };
  const dst = out as unknown as { [i: number]: number | bigint };
  let written = 0;
  for (;;) {
    let base = offset;
    for (let d = 0; d < rank - 1; d++) base += index[d] * stride[d];
    for (let i = 0; i < inner; i++) dst[written++] = src[base + i * innerStride];
    let d = rank - 2;
    while (d >= 0) {
      if (++index[d] < size[d]) break;
      index[d] = 0;
      d--;
    }
    if (d < 0) break;
  }
  return out;
}

export function readPth(bytes: Uint8Array, options: ReadPthOptions = {}): PthFile {
  try {
    return readPthUnchecked(bytes, options);
  } catch (e) {
    // Every failure leaves as a WeightsError that names the file; anything else is a bug of this reader.
    const { name } = options;
    if (e instanceof WeightsError) throw name && !e.message.startsWith(`${name}: `) ? new WeightsError(withName(name, e.message)) : e;
    throw new WeightsError(withName(name, `reader bug: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`));
  }
}

function readPthUnchecked(bytes: Uint8Array, options: ReadPthOptions): PthFile {
  const { name } = options;
  const fail = (message: string): never => { throw new WeightsError(withName(name, message)); };
  if (!isZip(bytes)) {
    if (looksLikeLegacyTorch(bytes)) fail('unsupported legacy (pre-1.6, non-zip) torch.save format; re-save it with torch>=1.6: torch.save(torch.load(f), f2)');
    fail('not a torch.save zip archive (no zip signature)');
  }
  // The ZIP reader is shared with the CMR archives; its problems become WeightsErrors naming this file and the entry.
  const fromZipReader = <T>(read: () => T): T => {
    try {
      return read();
    } catch (e) {
      if (e instanceof ZipFormatError) fail(withName(e.entryName, e.problem));
      throw e;
    }
  };
  // A repeated name resolves to its last entry, as in Python's zipfile.
  const entries = new Map<string, ZipEntry>(fromZipReader(() => readCentralDirectory(bytes)).map((entry) => [entry.name, entry]));
  const zip = {
    has: (entryName: string) => entries.has(entryName),
    read: (entryName: string) => {
      const entry = entries.get(entryName);
      if (!entry) return fail(`zip entry '${entryName}' not found`);
      return fromZipReader(() => extractZipEntry(bytes, entry, { zeroCrcMeansUnchecked: true }));
    },
  };
  const pickleEntries = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pickleEntries.length === 0) fail('zip archive has no <archive>/data.pkl: not a torch.save checkpoint');
  if (pickleEntries.length > 1) fail(`zip archive has several pickles (${pickleEntries.join(', ')})`);
  const archiveName = pickleEntries[0].slice(0, -'/data.pkl'.length);
  if (zip.has(`${archiveName}/constants.pkl`)) {
    fail('this is a TorchScript archive (torch.jit.save), not a state dict; re-save model.state_dict() with torch.save');
  }
  let byteOrder: 'little' | 'big' = 'little';
  if (zip.has(`${archiveName}/byteorder`)) {
    const text = new TextDecoder().decode(zip.read(`${archiveName}/byteorder`)).trim();
    if (text !== 'little' && text !== 'big') fail(`unknown byteorder record '${text}'`);
    byteOrder = text as 'little' | 'big';
  }

  const storages = new Map<string, StorageRecord>();
  // Every tensor is a copy; shared storages can be copied several times, but not without bound.
  let copied = 0;
  const copyBudget = Math.max(bytes.length * COPY_BUDGET_FACTOR, 2 ** 26);
  const storageData = (record: StorageRecord): HostTypedArray => {
    if (record.cached) return record.cached;
    const entry = `${archiveName}/data/${record.key}`;
    if (!zip.has(entry)) fail(`missing storage record '${entry}' referenced by the pickle`);
    let raw = zip.read(entry);
    const size = dtypeByteSize(record.dtype);
    if (raw.length < record.numel * size) fail(`storage '${entry}' has ${raw.length} bytes, needs ${record.numel * size} (${record.numel} × ${record.dtype})`);
    if (byteOrder === 'big' && size > 1) raw = byteSwap(raw.subarray(0, record.numel * size), size);
    record.cached = typedFromBytes(record.dtype, raw, record.numel);
    return record.cached;
  };

  const rebuildTensor = (storageValue: PyValue, offsetValue: PyValue, sizeValue: PyValue, strideValue: PyValue, dtype?: HostDType): HostTensor => {
    if (!(storageValue instanceof PyOpaque) || storageValue.kind !== 'storage') throw new WeightsError('tensor rebuild without a storage');
    const record = storageValue.payload as StorageRecord;
    const size = asIntList(sizeValue, 'tensor size');
    const stride = asIntList(strideValue, 'tensor stride');
    if (size.length !== stride.length) throw new WeightsError('tensor size and stride ranks differ');
    const offset = asIndex(offsetValue, 'tensor storage offset');
    let source = storageData(record);
    let sourceDType = record.dtype;
    if (dtype && dtype !== record.dtype) {
      // _rebuild_tensor_v3 over an untyped (byte) storage: reinterpret the bytes as `dtype`.
      if (record.dtype !== 'u8') throw new WeightsError(`tensor dtype ${dtype} does not match storage dtype ${record.dtype}`);
      const bytes = source as Uint8Array;
      source = typedFromBytes(dtype, bytes, Math.floor(bytes.length / dtypeByteSize(dtype)));
      sourceDType = dtype;
    }
    const data = gatherStrided(source, sourceDType, offset, size, stride);
    copied += data.byteLength;
    if (copied > copyBudget) throw new WeightsError(`the tensors copied out so far (${copied} bytes) exceed ${COPY_BUDGET_FACTOR}× the file size: the pickle references its storages implausibly often (corrupt)`);
    return new HostTensor(sourceDType, size, data);
  };

  const known: Record<string, (args: PyValue[]) => PyValue> = {
    'torch._utils._rebuild_tensor': (a) => rebuildTensor(a[0], a[1], a[2], a[3]),
    'torch._utils._rebuild_tensor_v2': (a) => rebuildTensor(a[0], a[1], a[2], a[3]),
    'torch._utils._rebuild_tensor_v3': (a) => {
      const marker = a[6];
      if (!(marker instanceof TorchDTypeGlobal)) throw new WeightsError('unsupported tensor dtype in _rebuild_tensor_v3');
      return rebuildTensor(a[0], a[1], a[2], a[3], marker.dtype);
    },
    // Parameters and tensor subclasses: the wrapper is dropped, the data is what we need.
    'torch._utils._rebuild_parameter': (a) => a[0],
    'torch._utils._rebuild_parameter_with_state': (a) => a[0],
    'torch._tensor._rebuild_from_type_v2': (a) => callKnown(a[0], a[2]),
    'torch._utils._rebuild_from_type_v2': (a) => callKnown(a[0], a[2]),
    'torch.Size': (a) => a[0] ?? [],
    'collections.OrderedDict': (a) => dictFromPairs(a[0]),
    'builtins.dict': (a) => dictFromPairs(a[0]),
    'collections.defaultdict': () => new Map(),
    'builtins.set': (a) => (Array.isArray(a[0]) ? [...a[0]] : []),
    'builtins.frozenset': (a) => (Array.isArray(a[0]) ? [...a[0]] : []),
    '__builtin__.set': (a) => (Array.isArray(a[0]) ? [...a[0]] : []),
    'copyreg._reconstructor': (a) => new PyObject(a[0] instanceof PyGlobal ? a[0].qualifiedName : 'object', []),
    'copy_reg._reconstructor': (a) => new PyObject(a[0] instanceof PyGlobal ? a[0].qualifiedName : 'object', []),
    // Protocol 2 stores bytes as latin-1 text (python 2 compatibility), e.g. inside numpy scalars.
    '_codecs.encode': (a) => Uint8Array.from(String(a[0]), (c) => c.charCodeAt(0) & 0xff),
    'numpy.core.multiarray.scalar': (a) => numpyScalar(a),
    'numpy._core.multiarray.scalar': (a) => numpyScalar(a),
  };
  const callKnown = (fn: PyValue, args: PyValue): PyValue => {
    if (!(fn instanceof PyGlobal) || !fn.call || !Array.isArray(args)) throw new WeightsError('unsupported tensor subclass rebuild');
    return fn.call(args);
  };

  const resolveGlobal = (module: string, globalName: string): PyGlobal => {
    const qualified = `${module}.${globalName}`;
    if (known[qualified]) return new PyGlobal(module, globalName, known[qualified]);
    if (module === 'torch' && globalName.endsWith('Storage')) {
      return new PyGlobal(module, globalName, () => { throw new WeightsError(`cannot construct ${qualified}`); });
    }
    if (module === 'torch' && TORCH_DTYPES[globalName]) return new TorchDTypeGlobal(module, globalName, TORCH_DTYPES[globalName]);
    if (module.startsWith('torch') && /_rebuild_/.test(globalName)) {
      // Quantized, sparse, nested, meta or device-specific tensors: we cannot produce host data.
      return new PyGlobal(module, globalName, () => { throw new WeightsError(`unsupported global ${qualified} (tensor type not supported by this reader)`); });
    }
    return new PyGlobal(module, globalName);
  };

  const persistentLoad = (pid: PyValue): PyValue => {
    if (!isTuple(pid) && !Array.isArray(pid)) throw new WeightsError('persistent id is not a tuple');
    const [tag, storageType, key, location, numel] = pid as PyValue[];
    if (tag !== 'storage') throw new WeightsError(`unsupported persistent id tag '${String(tag)}'`);
    if (!(storageType instanceof PyGlobal)) throw new WeightsError('persistent id without a storage type');
    const dtype = STORAGE_DTYPES[storageType.name];
    if (!dtype) throw new WeightsError(`unsupported storage type ${storageType.qualifiedName}`);
    const keyText = String(key);
    let record = storages.get(keyText);
    if (!record) {
      record = { key: keyText, dtype, numel: asIndex(numel, 'storage element count'), location: String(location) };
      storages.set(keyText, record);
    }
    return new PyOpaque('storage', record);
  };

  const root = unpickle(zip.read(`${archiveName}/data.pkl`), { fileName: name, resolveGlobal, persistentLoad });
  return { root, archiveName, byteOrder, storageCount: storages.size };
}

function dictFromPairs(pairs: PyValue | undefined): PyDict {
  const dict: PyDict = new Map();
  if (Array.isArray(pairs)) {
    for (const pair of pairs) if (Array.isArray(pair) && pair.length === 2) dict.set(pair[0], pair[1]);
  }
  return dict;
}

const NUMPY_KINDS: Record<string, (dv: DataView, little: boolean) => number | bigint | boolean> = {
  f2: (dv, le) => halfFromView(dv, le), f4: (dv, le) => dv.getFloat32(0, le), f8: (dv, le) => dv.getFloat64(0, le),
  i1: (dv) => dv.getInt8(0), i2: (dv, le) => dv.getInt16(0, le), i4: (dv, le) => dv.getInt32(0, le), i8: (dv, le) => dv.getBigInt64(0, le),
  u1: (dv) => dv.getUint8(0), u2: (dv, le) => dv.getUint16(0, le), u4: (dv, le) => dv.getUint32(0, le), u8: (dv, le) => dv.getBigUint64(0, le),
  b1: (dv) => dv.getUint8(0) !== 0,
};

function halfFromView(dv: DataView, little: boolean): number {
  const h = dv.getUint16(0, little);
  const t = new HostTensor('f16', [1], Uint16Array.of(h));
  return t.toFloat32()[0];
}

/** numpy scalars (e.g. a best-loss value saved as np.float64) become plain numbers. */
function numpyScalar(args: PyValue[]): PyValue {
  const [dtypeObject, raw] = args;
  if (!(dtypeObject instanceof PyObject) || !(raw instanceof Uint8Array)) return new PyObject('numpy.scalar', args);
  const kind = String(dtypeObject.args[0]);
  const state = dtypeObject.state;
  const little = !(Array.isArray(state) && state[1] === '>');
  const read = NUMPY_KINDS[kind];
  if (!read) return new PyObject('numpy.scalar', args);
  const width = Number(kind.slice(1));
  if (raw.length < width) throw new WeightsError(`numpy scalar of kind ${kind} has ${raw.length} bytes, needs ${width}`);
  const value = read(new DataView(raw.buffer, raw.byteOffset, raw.byteLength), little);
  return typeof value === 'bigint' && Number.isSafeInteger(Number(value)) ? Number(value) : value;
}
