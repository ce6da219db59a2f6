/**
 * A pickle virtual machine that rebuilds data, never runs code. Globals resolve through a
 * caller-supplied table of known callables (tensor rebuilders, OrderedDict, ...); anything else
 * becomes an inert PyObject record, so harmless extras in a checkpoint (argparse.Namespace,
 * numpy scalars we do not decode) never stop a load. Covers protocols 2-4, which torch.save uses.
 */
import { WeightsError, withName } from './errors';
import type { HostTensor } from './tensor';

/** A Python value as rebuilt here. Lists and tuples are arrays (tuples are frozen). */
export type PyValue =
  | null | boolean | number | bigint | string | Uint8Array
  | PyValue[] | PyDict | PyObject | PyGlobal | HostTensor | PyOpaque;
export type PyDict = Map<PyValue, PyValue>;

/** A reference to module.name, produced by GLOBAL/STACK_GLOBAL. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
    /** Present for callables we know how to evaluate; the rest build PyObject records. */
    readonly call?: (args: PyValue[]) => PyValue,
  ) {}
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** An instance of a class we do not model (argparse.Namespace, custom configs, ...). */
export class PyObject {
  /** Set by BUILD: usually a dict of attributes. */
  state: PyValue = null;
  /** Filled by SETITEM(S)/APPEND(S) on the object (dict- or list-like classes). */
  readonly dictItems: PyDict = new Map();
  readonly listItems: PyValue[] = [];
  constructor(readonly className: string, readonly args: PyValue[]) {}

  /** Attribute dict from BUILD (argparse.Namespace etc.), or an empty map. */
  get attributes(): PyDict {
    if (this.state instanceof Map) return this.state;
    // BUILD may pass (dict_state, slot_state).
    if (Array.isArray(this.state) && this.state[0] instanceof Map) return this.state[0] as PyDict;
    return new Map();
  }
}

/** Values that only make sense to a specific loader (e.g. torch storages); carried through untouched. */
export class PyOpaque {
  constructor(readonly kind: string, readonly payload: unknown) {}
}

export interface PickleHooks {
  resolveGlobal(module: string, name: string): PyGlobal;
  persistentLoad?(pid: PyValue): PyValue;
  /** Used to prefix error messages. */
  fileName?: string;
}

const MARK = Symbol('mark');
/** Longest LONG1/LONG4 integer accepted (checkpoints store small ints; 64 KiB is a 500,000-bit number). */
const MAX_LONG_BYTES = 65536;
type StackItem = PyValue | typeof MARK;

function tuple(items: PyValue[]): PyValue[] {
  return Object.freeze(items) as PyValue[];
}

export function isTuple(value: PyValue): value is PyValue[] {
  return Array.isArray(value) && Object.isFrozen(value);
}

export function unpickle(data: Uint8Array, hooks: PickleHooks): PyValue {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const utf8 = new TextDecoder('utf-8');
  const latin1 = new TextDecoder('latin1');
  const stack: StackItem[] = [];
  const memo = new Map<number, PyValue>();
  let pos = 0;
  let opcodeOffset = 0;

  const fail = (message: string): never => {
    throw new WeightsError(withName(hooks.fileName, `pickle: ${message} (at byte ${opcodeOffset})`));
  };
  const need = (n: number) => {
    if (pos + n > data.length) fail(`data ends early: need ${n} more bytes at offset ${pos} of ${data.length} (truncated?)`);
  };
  const u8 = () => { need(1); return data[pos++]; };
  const u16 = () => { need(2); const v = dv.getUint16(pos, true); pos += 2; return v; };
  const u32 = () => { need(4); const v = dv.getUint32(pos, true); pos += 4; return v; };
  const i32 = () => { need(4); const v = dv.getInt32(pos, true); pos += 4; return v; };
  const u64 = () => {
    need(8);
    const v = dv.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`length ${v} too large`);
    return Number(v);
  };
  const take = (n: number) => { need(n); const s = data.subarray(pos, pos + n); pos += n; return s; };
  const line = () => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) fail('unterminated text line (truncated?)');
    const s = latin1.decode(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = (): PyValue => {
    const v = stack.pop();
    if (v === undefined) fail('stack underflow');
    if (v === MARK) fail('unexpected MARK on stack');
    return v as PyValue;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) fail('stack underflow');
    return v as PyValue;
  };
  const popToMark = (): PyValue[] => {
    const at = stack.lastIndexOf(MARK);
    if (at < 0) fail('MARK not found');
    const items = stack.slice(at + 1) as PyValue[];
    stack.length = at;
    return items;
  };
  /**
   * Little-endian two's-complement integer of arbitrary length (LONG1/LONG4), built from one hex string
   * (a byte-by-byte BigInt shift is quadratic). Checkpoints hold small ints; a huge one means corruption.
   */
  const readLong = (n: number): number | bigint => {
    if (n > MAX_LONG_BYTES) fail(`integer of ${n} bytes (more than ${MAX_LONG_BYTES}): corrupt pickle`);
    const bytes = take(n);
    if (n === 0) return 0;
    let hex = '';
    for (let i = n - 1; i >= 0; i--) hex += bytes[i].toString(16).padStart(2, '0');
    let v = BigInt(`0x${hex}`);
    if (bytes[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  /** Protocol-0 text integers (INT, LONG, PUT, GET): digits only, or the pickle is corrupt. */
  const textInt = (what: string, text: string): number | bigint => {
    const digits = text.replace(/L$/, '');
    if (!/^[-+]?\d{1,4000}$/.test(digits)) fail(`${what} holds '${text.slice(0, 40)}', not an integer`);
    const v = BigInt(digits);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  /** repr() of a Python float: digits, inf or nan. */
  const textFloat = (text: string): number => {
    const s = text.trim();
    if (/^[-+]?inf(inity)?$/i.test(s)) return s.startsWith('-') ? -Infinity : Infinity;
    if (/^[-+]?nan$/i.test(s)) return NaN;
    const v = Number(s);
    if (s === '' || Number.isNaN(v)) fail(`FLOAT holds '${s.slice(0, 40)}', not a number`);
    return v;
  };
  const memoKey = (what: string, text: string): number => {
    const v = textInt(what, text);
    if (typeof v !== 'number' || v < 0) fail(`${what} memo key '${text.slice(0, 40)}' is not a valid index`);
    return v as number;
  };
  const setItems = (target: PyValue, items: PyValue[]) => {
    if (items.length % 2) fail('SETITEMS with an odd number of items');
    const dict = target instanceof Map ? target : target instanceof PyObject ? target.dictItems : fail('SETITEM on a non-dict');
    for (let i = 0; i < items.length; i += 2) dict.set(items[i], items[i + 1]);
  };
  const appendItems = (target: PyValue, items: PyValue[]) => {
    // A loop, not push(...items): a corrupt pickle can hold more items than the call stack takes arguments.
    if (Array.isArray(target) && !Object.isFrozen(target)) for (const item of items) target.push(item);
    else if (target instanceof PyObject) for (const item of items) target.listItems.push(item);
    else fail('APPEND on a non-list');
  };
  const callGlobal = (callable: PyValue, args: PyValue): PyValue => {
    if (!Array.isArray(args)) fail('REDUCE arguments are not a tuple');
    const argList = args as PyValue[];
    if (callable instanceof PyGlobal) {
      if (callable.call) {
        try {
          return callable.call(argList);
        } catch (err) {
          rethrowNamed(err, callable.qualifiedName);
        }
      }
      return new PyObject(callable.qualifiedName, argList);
    }
    return fail('REDUCE/NEWOBJ on something that is not a global');
  };
  /** Errors of the callables and hooks, with the file name and byte offset added (once). */
  const rethrowNamed = (err: unknown, context: string): never => {
    if (err instanceof WeightsError && hooks.fileName && err.message.startsWith(`${hooks.fileName}: `)) throw err;
    const message = err instanceof Error ? err.message : String(err);
    return fail(err instanceof WeightsError ? `${context}: ${message}` : `${context}: reader bug: ${err instanceof Error ? err.name : 'error'}: ${message}`);
  };
  const persistent = (pid: PyValue): PyValue => {
    if (!hooks.persistentLoad) return fail('persistent id found but this file type does not define persistent storage');
    try {
      return hooks.persistentLoad(pid);
    } catch (err) {
      return rethrowNamed(err, 'persistent id');
    }
  };
  const memoGet = (key: number) => {
    if (!memo.has(key)) fail(`memo key ${key} missing`);
    return memo.get(key) as PyValue;
  };

  try {
    for (;;) {
      opcodeOffset = pos;
      const op = u8();
      switch (op) {
        case 0x80: u8(); break; // PROTO: the version does not change how we decode
        case 0x95: u64(); break; // FRAME: only a read-ahead hint
        case 0x2e: return pop(); // STOP
        case 0x28: stack.push(MARK); break;
        case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
        case 0x5d: stack.push([]); break; // EMPTY_LIST
        case 0x29: stack.push(tuple([])); break; // EMPTY_TUPLE
        case 0x8f: stack.push([]); break; // EMPTY_SET: sets become lists
        case 0x90: { const items = popToMark(); appendItems(top(), items); break; } // ADDITEMS
        case 0x91: stack.push(popToMark()); break; // FROZENSET
        case 0x64: { // DICT
          const items = popToMark();
          const d: PyDict = new Map();
          setItems(d, items);
          stack.push(d);
          break;
        }
        case 0x6c: stack.push(popToMark()); break; // LIST
        case 0x74: stack.push(tuple(popToMark())); break; // TUPLE
        case 0x85: stack.push(tuple([pop()])); break; // TUPLE1
        case 0x86: { const b = pop(); const a = pop(); stack.push(tuple([a, b])); break; } // TUPLE2
        case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push(tuple([a, b, c])); break; } // TUPLE3
        case 0x58: stack.push(utf8.decode(take(u32()))); break; // BINUNICODE
        case 0x8c: stack.push(utf8.decode(take(u8()))); break; // SHORT_BINUNICODE
        case 0x8d: stack.push(utf8.decode(take(u64()))); break; // BINUNICODE8
        case 0x54: stack.push(latin1.decode(take(i32()))); break; // BINSTRING (py2 str)
        case 0x55: stack.push(latin1.decode(take(u8()))); break; // SHORT_BINSTRING
        case 0x43: stack.push(take(u8()).slice()); break; // SHORT_BINBYTES
        case 0x42: stack.push(take(u32()).slice()); break; // BINBYTES
        case 0x8e: stack.push(take(u64()).slice()); break; // BINBYTES8
        case 0x96: stack.push(take(u64()).slice()); break; // BYTEARRAY8
        case 0x4a: stack.push(i32()); break; // BININT
        case 0x4b: stack.push(u8()); break; // BININT1
        case 0x4d: stack.push(u16()); break; // BININT2
        case 0x8a: stack.push(readLong(u8())); break; // LONG1
        case 0x8b: stack.push(readLong(u32())); break; // LONG4
        case 0x49: { // INT (text): also encodes True/False as 01/00
          const s = line();
          stack.push(s === '01' ? true : s === '00' ? false : textInt('INT', s));
          break;
        }
        case 0x4c: stack.push(textInt('LONG', line())); break; // LONG (text)
        case 0x46: stack.push(textFloat(line())); break; // FLOAT (text)
        case 0x47: { need(8); stack.push(dv.getFloat64(pos, false)); pos += 8; break; } // BINFLOAT is big-endian
        case 0x88: stack.push(true); break; // NEWTRUE
        case 0x89: stack.push(false); break; // NEWFALSE
        case 0x4e: stack.push(null); break; // NONE
        case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
        case 0x75: { const items = popToMark(); setItems(top(), items); break; } // SETITEMS
        case 0x61: { const v = pop(); appendItems(top(), [v]); break; } // APPEND
        case 0x65: { const items = popToMark(); appendItems(top(), items); break; } // APPENDS
        case 0x71: memo.set(u8(), top()); break; // BINPUT
        case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
        case 0x70: memo.set(memoKey('PUT', line()), top()); break; // PUT (text)
        case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
        case 0x68: stack.push(memoGet(u8())); break; // BINGET
        case 0x6a: stack.push(memoGet(u32())); break; // LONG_BINGET
        case 0x67: stack.push(memoGet(memoKey('GET', line()))); break; // GET (text)
        case 0x30: pop(); break; // POP
        case 0x31: stack.push(top()); break; // DUP
        case 0x32: popToMark(); break; // POP_MARK
        case 0x63: { const module = line(); const name = line(); stack.push(hooks.resolveGlobal(module, name)); break; } // GLOBAL
        case 0x93: { // STACK_GLOBAL
          const name = pop();
          const module = pop();
          if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
          stack.push(hooks.resolveGlobal(module as string, name as string));
          break;
        }
        case 0x52: { const args = pop(); const callable = pop(); stack.push(callGlobal(callable, args)); break; } // REDUCE
        case 0x81: { const args = pop(); const cls = pop(); stack.push(callGlobal(cls, args)); break; } // NEWOBJ
        case 0x92: { pop(); const args = pop(); const cls = pop(); stack.push(callGlobal(cls, args)); break; } // NEWOBJ_EX (kwargs dropped)
        case 0x62: { // BUILD
          const state = pop();
          const target = top();
          if (target instanceof PyObject) target.state = state;
          // Dicts (OrderedDict state_dict `_metadata`) and tensors carry extra attributes we do not need.
          break;
        }
        case 0x51: stack.push(persistent(pop())); break; // BINPERSID
        case 0x50: stack.push(persistent(line())); break; // PERSID (text)
        default: {
          const hex = `0x${op.toString(16).padStart(2, '0')}`;
          const printable = op >= 0x20 && op < 0x7f ? ` '${String.fromCharCode(op)}'` : '';
          fail(`unknown or unsupported opcode ${hex}${printable}`);
        }
      }
    }
  } catch (err) {
    // The contract: every failure is a WeightsError naming the file. Anything else is a bug of this
    // reader, reported as such (the fuzz tests fail on 'reader bug') instead of escaping as a RangeError.
    if (err instanceof WeightsError) throw err;
    return fail(`reader bug: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
  }
}
