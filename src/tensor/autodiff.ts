/**
 * Reverse-mode automatic differentiation with a functional face.
 *
 * Ops attach a {@link GradNode} to their output when an input requires a gradient
 * ({@link record}); {@link valueAndGrad} marks the parameters, runs the function, and walks the
 * recorded graph backwards, all inside a memory scope so intermediate tensors are released.
 *
 * @module
 */

import { collectTensors, type Context, type GradNode, Tensor } from "./tensor.ts";
import { flattenTree, mapTree, type TensorTree } from "./tree.ts";

/**
 * Attaches an autodiff node to `out` when gradients are enabled and any input requires one.
 * `backward(dy)` returns one gradient (or null) per input, computed with ops or kernels.
 */
export function record(
  out: Tensor,
  inputs: readonly Tensor[],
  backward: GradNode["backward"],
): Tensor {
  if (out.ctx.gradEnabled && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.node = { inputs, backward };
  }
  return out;
}

/** A tensor sharing `t`'s storage that blocks gradients (teacher outputs, queue). */
export function stopGradient(t: Tensor): Tensor {
  return t.ctx.view(t, t.shape);
}

/** What a differentiated function may return: the scalar, or the scalar with auxiliary outputs. */
export type Differentiable<Aux> = Tensor | { value: Tensor; aux: Aux };

/** The result of a {@link valueAndGrad} call. */
export interface ValueAndGrad<P extends TensorTree, Aux> {
  /** The scalar value (detached). */
  value: Tensor;
  /** d value / d params, shaped like the params. */
  grads: P;
  /** Auxiliary outputs of the function (detached), or undefined. */
  aux: Aux;
}

/**
 * Transforms `f(params, ...args)` (returning a scalar tensor, or `{ value, aux }`) into a function
 * that also returns the gradient of the scalar with respect to every tensor of `params`.
 * Tensors created inside are released, except the returned value, gradients and aux.
 */
export function valueAndGrad<P extends TensorTree, A extends unknown[], Aux = undefined>(
  f: (params: P, ...args: A) => Differentiable<Aux>,
): (params: P, ...args: A) => ValueAndGrad<P, Aux> {
  return (params: P, ...args: A) => {
    const leaves = flattenTree(params);
    if (leaves.length === 0) throw new Error("Cannot differentiate: the parameter tree is empty");
    const ctx = leaves[0][1].ctx;
    return ctx.scope(() => {
      const marked = mapTree(params, (t) => {
        const v = ctx.view(t, t.shape);
        v.requiresGrad = true;
        return v;
      });
      const out = f(marked, ...args);
      const value = out instanceof Tensor ? out : out.value;
      const aux = (out instanceof Tensor ? undefined : out.aux) as Aux;
      if (value.size !== 1) {
        throw new RangeError(
          `Cannot differentiate a function whose value has shape [${value.shape}]: expected a scalar`,
        );
      }
      const gradById = backward(ctx, value);
      const grads = mapTree(marked, (leaf) => {
        const g = gradById.get(leaf.id);
        if (g) {
          gradById.delete(leaf.id);
          return g;
        }
        return ctx.zeros(leaf.shape);
      });
      for (const g of gradById.values()) g.dispose();
      const results = new Set<Tensor>();
      collectTensors([value, aux], results);
      for (const t of results) {
        t.node = undefined;
        t.requiresGrad = false;
      }
      return { value, grads, aux };
    });
  };
}

/** Runs the backward sweep from scalar `out`; returns gradients of the leaves keyed by tensor id. */
function backward(ctx: Context, out: Tensor): Map<number, Tensor> {
  const order: Tensor[] = [];
  const seen = new Set<number>();
  const stack: [Tensor, number][] = [[out, 0]];
  // Iterative post-order DFS (deep ResNets overflow a recursive walk's stack in debug builds).
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    if (i === 0) {
      if (seen.has(t.id)) {
        stack.pop();
        continue;
      }
      seen.add(t.id);
    }
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const next = inputs[i];
      if (next.requiresGrad && !seen.has(next.id)) stack.push([next, 0]);
    } else {
      stack.pop();
      order.push(t);
    }
  }
  const grads = new Map<number, Tensor>();
  return ctx.noGrad(() => {
    grads.set(out.id, ctx.full(out.shape, 1));
    for (let j = order.length - 1; j >= 0; j--) {
      const t = order[j];
      const g = grads.get(t.id);
      if (!g || !t.node) continue;
      const inGrads = t.node.backward(g);
      grads.delete(t.id);
      // A rule may return `dy` itself or one tensor for several inputs: such aliases get views.
      const used = new Set<Tensor>();
      t.node.inputs.forEach((input, k) => {
        const raw = inGrads[k];
        if (!raw || !input.requiresGrad) return;
        const gi = raw === g || used.has(raw) ? ctx.view(raw, raw.shape) : raw;
        used.add(raw);
        const prev = grads.get(input.id);
        if (!prev) {
          grads.set(input.id, gi);
          return;
        }
        const sum = ctx.empty(prev.shape);
        ctx.backend.axpby({
          x: prev.storage,
          y: gi.storage,
          out: sum.storage,
          alpha: 1,
          beta: 1,
          n: prev.size,
        });
        prev.dispose();
        gi.dispose();
        grads.set(input.id, sum);
      });
      for (const raw of inGrads) if (raw && raw !== g && !used.has(raw)) raw.dispose();
      g.dispose();
    }
    return grads;
  });
}
