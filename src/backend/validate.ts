/**
 * `validateKernel(backend, kernel, opts)`: the one argument validator of the contract, driven by
 * the kernel table (`kernels.ts`). Every backend calls it first in every kernel, so a bad call fails
 * the same way on every backend, before any native code runs:
 *
 * - dimensions are integers >= 0 and scalars finite; geometry and option checks of the table pass;
 * - every storage argument is present (or optional), belongs to `backend`, is not freed, has a dtype
 *   the kernel accepts (arguments of one `group` share a dtype) and at least the elements the
 *   dimensions need;
 * - multi-tensor lists have one entry per tensor, each long enough;
 * - no output is also another argument, except the in-place pairs the table allows.
 *
 * @module
 */

import type { Backend, DType, KernelName, Opts, Storage } from "./backend.ts";
import { type ArgSpec, kernelSpec, type ListSpec } from "./kernels.ts";
import { checkDims, checkScalars } from "./checks.ts";

type Role = "input" | "output" | "inout";

/** Checks a call of `kernel` against the kernel table; throws a clear error naming the argument. */
export function validateKernel<K extends KernelName>(
  backend: Backend,
  kernel: K,
  opts: Opts<K>,
): void {
  const spec = kernelSpec(kernel);
  checkDims(kernel, spec.dims(opts));
  if (spec.scalars) checkScalars(kernel, spec.scalars(opts));
  spec.check?.(kernel, opts);

  const o = opts as unknown as Record<string, unknown>;
  const seen = new Map<Storage, { name: string; role: Role }>();
  const groups = new Map<string, { dtype: DType; name: string }>();
  const roles: [Role, Record<string, ArgSpec<Opts<K>>> | undefined][] = [
    ["input", spec.inputs],
    ["output", spec.outputs],
    ["inout", spec.inouts],
  ];
  for (const [role, args] of roles) {
    for (const [name, arg] of Object.entries(args ?? {})) {
      const s = o[name] as Storage | null | undefined;
      if (s === undefined || s === null) {
        if (!arg.optional || arg.requiredWhen?.(opts)) {
          throw new TypeError(`Cannot run ${kernel}: storage '${name}' is missing`);
        }
        continue;
      }
      checkStorage(backend, kernel, name, s, arg.dtypes, arg.count(opts));
      if (arg.group !== undefined) checkGroup(kernel, groups, arg.group, name, s.dtype);
      noteAlias(kernel, spec.mayAlias, seen, s, name, role);
    }
  }

  const lists = spec.lists;
  if (lists) {
    const listRoles: [Role, Record<string, ListSpec> | undefined][] = [
      ["input", lists.inputs],
      ["output", lists.outputs],
      ["inout", lists.inouts],
    ];
    let count = -1;
    let first = "";
    for (const [role, specs] of listRoles) {
      for (const [name, ls] of Object.entries(specs ?? {})) {
        const list = o[name];
        if (!Array.isArray(list)) {
          throw new TypeError(`Cannot run ${kernel}: '${name}' must be an array of storages`);
        }
        if (count < 0) [count, first] = [list.length, name];
        if (list.length !== count) {
          throw new RangeError(
            `Cannot run ${kernel}: '${name}' has ${list.length} entries but '${first}' has ${count}`,
          );
        }
        const anchor = o[ls.lengthOf] as Storage[] | undefined;
        list.forEach((s: Storage, i: number) => {
          const needed = anchor && anchor !== list ? (anchor[i]?.length ?? 0) : 0;
          checkStorage(backend, kernel, `${name}[${i}]`, s, ls.dtypes, needed);
          noteAlias(kernel, spec.mayAlias, seen, s, `${name}[${i}]`, role, name, i);
        });
      }
    }
  }
}

/** Checks one storage: owner, not freed, dtype, length. */
export function checkStorage(
  backend: Backend,
  kernel: string,
  name: string,
  s: Storage,
  dtypes: readonly DType[],
  needed: number,
): void {
  if (s === null || typeof s !== "object" || s.backend !== backend) {
    const owner = (s as Partial<Storage> | undefined)?.backend?.name ?? "no backend";
    throw new TypeError(
      `Cannot run ${kernel}: storage '${name}' does not belong to this ${backend.name} backend ` +
        `(it belongs to ${owner}); move it with upload/download first`,
    );
  }
  if (s.freed) throw new Error(`Cannot run ${kernel}: storage '${name}' was freed`);
  if (!dtypes.includes(s.dtype)) {
    throw new TypeError(
      `Cannot run ${kernel}: storage '${name}' has dtype ${s.dtype}, expected ${
        dtypes.join(" or ")
      }`,
    );
  }
  if (s.length < needed) {
    throw new RangeError(
      `Cannot run ${kernel}: storage '${name}' has ${s.length} elements, expected at least ${needed}`,
    );
  }
}

function checkGroup(
  kernel: string,
  groups: Map<string, { dtype: DType; name: string }>,
  group: string,
  name: string,
  dtype: DType,
): void {
  const g = groups.get(group);
  if (g === undefined) groups.set(group, { dtype, name });
  else if (g.dtype !== dtype) {
    throw new TypeError(
      `Cannot run ${kernel}: storage '${name}' has dtype ${dtype} but '${g.name}' has ${g.dtype}; ` +
        `they must match`,
    );
  }
}

/**
 * Records `s` under `name`; when it was already seen under another name, throws unless both are
 * inputs or the table allows the pair (for lists: the same entry index of the allowed lists).
 */
function noteAlias(
  kernel: string,
  mayAlias: readonly (readonly [string, string])[] | undefined,
  seen: Map<Storage, { name: string; role: Role }>,
  s: Storage,
  name: string,
  role: Role,
  listName?: string,
  index?: number,
): void {
  const prev = seen.get(s);
  if (prev === undefined) {
    seen.set(s, { name, role });
    return;
  }
  if (prev.role === "input" && role === "input") return;
  const base = (n: string) => n.replace(/\[\d+\]$/, "");
  const sameIndex = index === undefined || prev.name === `${base(prev.name)}[${index}]`;
  const a = listName ?? name, b = base(prev.name);
  const allowed = sameIndex &&
    (mayAlias ?? []).some(([x, y]) => (x === a && y === b) || (x === b && y === a));
  if (!allowed) {
    throw new Error(
      `Cannot run ${kernel}: '${name}' is the same storage as '${prev.name}'; ` +
        `this kernel needs distinct storages there`,
    );
  }
}
