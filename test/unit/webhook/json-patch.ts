// A strict RFC 6902 JSON Patch applier for the tests (independent of src/webhook): `add`, `replace`,
// `remove` and `test`, JSON Pointers per RFC 6901. It throws on anything the API server's patcher
// (evanphx/json-patch) would refuse: a missing parent, `replace`/`remove` of a missing member, a bad
// pointer, an op without its fields.

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export interface Op {
  op: string;
  path: string;
  value?: unknown;
}

export function parsePointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new Error(`pointer ${JSON.stringify(path)} does not start with "/"`);
  return path
    .slice(1)
    .split('/')
    .map((t) => {
      if (/~[^01]|~$/.test(t)) throw new Error(`bad escape in pointer token ${JSON.stringify(t)}`);
      return t.replace(/~1/g, '/').replace(/~0/g, '~');
    });
}

function isObj(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function arrayIndex(token: string, length: number, forAdd: boolean): number {
  if (forAdd && token === '-') return length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new Error(`bad array index ${JSON.stringify(token)}`);
  const i = Number(token);
  if (i > length || (!forAdd && i === length)) throw new Error(`array index ${i} out of range`);
  return i;
}

/** Applies the patch to a deep copy of `doc`; throws on the first invalid op. */
export function applyPatch(doc: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw new Error('a JSON Patch is an array');
  let root = structuredClone(doc) as Json;
  for (const raw of ops) {
    if (!isObj(raw)) throw new Error('a patch op is an object');
    const op = raw as unknown as Op;
    if (typeof op.path !== 'string') throw new Error('op without path');
    const tokens = parsePointer(op.path);
    if ((op.op === 'add' || op.op === 'replace' || op.op === 'test') && !Object.hasOwn(raw, 'value')) {
      throw new Error(`${op.op} without value`);
    }
    if (tokens.length === 0) {
      if (op.op === 'add' || op.op === 'replace') root = structuredClone(op.value) as Json;
      else throw new Error(`${op.op} on the root`);
      continue;
    }
    let parent: Json = root;
    for (const t of tokens.slice(0, -1)) {
      if (isObj(parent)) {
        if (!Object.hasOwn(parent, t))
          throw new Error(`missing parent member ${JSON.stringify(t)} of ${op.path}`);
        parent = parent[t]!;
      } else if (Array.isArray(parent)) {
        parent = parent[arrayIndex(t, parent.length, false)]!;
      } else {
        throw new Error(`parent of ${op.path} is not a container`);
      }
    }
    const last = tokens[tokens.length - 1]!;
    const value = structuredClone(op.value) as Json;
    if (isObj(parent)) {
      const exists = Object.hasOwn(parent, last);
      // defineProperty, not assignment: a member named __proto__ is data, not the prototype.
      const set = () =>
        Object.defineProperty(parent, last, { value, writable: true, enumerable: true, configurable: true });
      switch (op.op) {
        case 'add':
          set();
          break;
        case 'replace':
          if (!exists) throw new Error(`replace of missing member ${op.path}`);
          set();
          break;
        case 'remove':
          if (!exists) throw new Error(`remove of missing member ${op.path}`);
          delete parent[last];
          break;
        case 'test':
          if (!exists || JSON.stringify(parent[last]) !== JSON.stringify(value))
            throw new Error('test failed');
          break;
        default:
          throw new Error(`unsupported op ${JSON.stringify(op.op)}`);
      }
    } else if (Array.isArray(parent)) {
      switch (op.op) {
        case 'add':
          parent.splice(arrayIndex(last, parent.length, true), 0, value);
          break;
        case 'replace':
          parent[arrayIndex(last, parent.length, false)] = value;
          break;
        case 'remove':
          parent.splice(arrayIndex(last, parent.length, false), 1);
          break;
        default:
          throw new Error(`unsupported op ${JSON.stringify(op.op)} on an array`);
      }
    } else {
      throw new Error(`parent of ${op.path} is not a container`);
    }
  }
  return root;
}
