import { Tensor } from './tensor';
import { EngineError, ShapeError } from './errors';
import { formatShape, shapesEqual } from './shape';
import { tidy, untrackTensor } from './scope';

/**
 * Reverse-mode autograd. Each differentiable op that has an input requiring grad records a GradNode.
 * Nodes are reference counted: the output tensor and every downstream node hold a reference, so when
 * the last tensor of a graph is disposed (or backward runs without retainGraph) the saved
 * intermediates are released at once instead of waiting for a garbage collector.
 */
let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording any autograd graph. */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

type Edge = { kind: 'node'; node: GradNode } | { kind: 'leaf'; tensor: Tensor } | null;

/** Given the gradient of the output, returns one gradient (or null) per input. */
export type BackwardFn = (gradOutput: Tensor, saved: readonly Tensor[]) => (Tensor | null)[];

export class GradNode {
  private refs = 1;
  private saved: Tensor[];
  private released = false;
  readonly edges: Edge[];

  constructor(
    readonly name: string,
    inputs: readonly Tensor[],
    saved: readonly Tensor[],
    private readonly backwardFn: BackwardFn,
    readonly outputShape: readonly number[],
  ) {
    this.edges = inputs.map((t): Edge => {
      if (t.gradNode) {
        t.gradNode.refs++;
        return { kind: 'node', node: t.gradNode };
      }
      if (t.requiresGrad) return { kind: 'leaf', tensor: t };
      return null;
    });
    // Saved tensors get their own handles: the user may dispose the originals.
    this.saved = saved.map((t) => {
      const h = t.share();
      untrackTensor(h);
      return h;
    });
  }

  runBackward(gradOutput: Tensor): (Tensor | null)[] {
    if (this.released) {
      throw new EngineError(`backward through '${this.name}' a second time: its saved tensors were freed; pass retainGraph: true to the first call`);
    }
    // Temporaries made by the rule are freed at once; each returned gradient is a distinct handle.
    const grads = noGrad(() => tidy(() => this.backwardFn(gradOutput, this.saved)));
    const seen = new Set<Tensor>([gradOutput]);
    return grads.map((g) => {
      if (!g) return null;
      if (seen.has(g)) return g.share();
      seen.add(g);
      return g;
    });
  }

  /** Frees saved tensors; the node can no longer run backward. */
  releaseSaved(): void {
    if (this.released) return;
    this.released = true;
    for (const t of this.saved) t.dispose();
    this.saved = [];
  }

  unref(): void {
    if (--this.refs > 0) return;
    this.releaseSaved();
    for (const e of this.edges) if (e?.kind === 'node') e.node.unref();
  }
}

/**
 * Attaches a node to `output` when grad mode is on and some input requires grad. Returns output.
 * Ops call this after computing their result.
 */
export function record(name: string, inputs: readonly Tensor[], output: Tensor, saved: readonly Tensor[], backward: BackwardFn): Tensor {
  if (!gradEnabled || !inputs.some((t) => t.requiresGrad || t.gradNode)) return output;
  output.gradNode = new GradNode(name, inputs, saved, backward, output.shape);
  return output;
}

function topoOrder(roots: GradNode[]): GradNode[] {
  const order: GradNode[] = [];
  const visited = new Set<GradNode>();
  // Iterative DFS: graphs of deep models overflow a recursive one.
  for (const root of roots) {
    if (visited.has(root)) continue;
    const stack: [GradNode, number][] = [[root, 0]];
    visited.add(root);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [node, i] = top;
      if (i < node.edges.length) {
        top[1]++;
        const e = node.edges[i];
        if (e?.kind === 'node' && !visited.has(e.node)) {
          visited.add(e.node);
          stack.push([e.node, 0]);
        }
      } else {
        order.push(node);
        stack.pop();
      }
    }
  }
  return order.reverse();
}

export interface GradOptions {
  /** Keep saved tensors so the graph can be differentiated again (default false). */
  retainGraph?: boolean;
}

type AddFn = (a: Tensor, b: Tensor) => Tensor;
type UnaryFn = (t: Tensor) => Tensor;
let addImpl: AddFn | null = null;
let onesLikeImpl: UnaryFn | null = null;
let copyImpl: UnaryFn | null = null;
/** Set by the elementwise kernels: accumulating gradients needs add, ones and a copy. */
export function setAutogradKernels(add: AddFn, onesLike: UnaryFn, copy: UnaryFn): void {
  addImpl = add;
  onesLikeImpl = onesLike;
  copyImpl = copy;
}

/**
 * A leaf's .grad must own its memory: optimizers and clipping update it in place, and a rule may hand the
 * same buffer to two inputs (add) or return a broadcast view (sum, expand).
 */
function ownedGradient(g: Tensor): Tensor {
  if (g.isContiguous && g.storage.refCount === 1 && g.offset === 0) return g;
  const copy = noGrad(() => copyImpl!(g));
  untrackTensor(copy);
  g.dispose();
  return copy;
}

function accumulate(map: Map<unknown, Tensor>, key: unknown, g: Tensor): void {
  const prev = map.get(key);
  if (!prev) {
    map.set(key, g);
    return;
  }
  const sum = noGrad(() => addImpl!(prev, g));
  prev.dispose();
  g.dispose();
  map.set(key, sum);
}

/**
 * Core of backward() and grad(): propagates from outputs, returns gradients keyed by leaf tensor
 * and by target node. Intermediate gradients are disposed as soon as they have been consumed.
 */
function propagate(outputs: Tensor[], gradOutputs: (Tensor | undefined)[], targets: Set<unknown> | null, retainGraph: boolean) {
  const nodeGrads = new Map<unknown, Tensor>();
  const leafGrads = new Map<unknown, Tensor>();
  const roots: GradNode[] = [];
  outputs.forEach((out, i) => {
    out.assertAlive();
    const seed = gradOutputs[i];
    if (!out.gradNode && !out.requiresGrad) throw new EngineError(`backward: output ${i} does not require grad (was it computed under noGrad, or from tensors without requiresGrad?)`);
    let g: Tensor;
    if (seed) {
      if (!shapesEqual(seed.shape, out.shape)) throw new ShapeError(`gradient shape ${formatShape(seed.shape)} does not match output ${formatShape(out.shape)}`);
      g = seed.share();
    } else {
      if (out.size !== 1) throw new ShapeError(`backward() without a gradient needs a scalar output, got ${formatShape(out.shape)}`);
      g = noGrad(() => onesLikeImpl!(out));
    }
    untrackTensor(g);
    if (out.gradNode) {
      accumulate(nodeGrads, out.gradNode, g);
      roots.push(out.gradNode);
    } else accumulate(leafGrads, out, g);
  });
  const captured = new Map<unknown, Tensor>();
  for (const node of topoOrder(roots)) {
    const g = nodeGrads.get(node);
    if (!g) continue;
    nodeGrads.delete(node);
    if (targets?.has(node)) captured.set(node, g.share());
    const inputGrads = node.runBackward(g);
    g.dispose();
    node.edges.forEach((edge, i) => {
      const ig = inputGrads[i];
      if (!ig) return;
      untrackTensor(ig);
      if (!edge) return ig.dispose();
      if (edge.kind === 'node') accumulate(nodeGrads, edge.node, ig);
      else if (!targets || targets.has(edge.tensor)) accumulate(leafGrads, edge.tensor, ig);
      else ig.dispose();
    });
    if (!retainGraph) node.releaseSaved();
  }
  for (const g of nodeGrads.values()) g.dispose();
  return { leafGrads, captured };
}

/** Accumulates d(output)/d(leaf) into every leaf's `.grad`. */
export function backward(output: Tensor, gradOutput?: Tensor, options: GradOptions = {}): void {
  const { leafGrads } = propagate([output], [gradOutput], null, options.retainGraph ?? false);
  for (const [leaf, g] of leafGrads as Map<Tensor, Tensor>) {
    if (!shapesEqual(g.shape, leaf.shape)) throw new ShapeError(`gradient of ${leaf.name || 'a leaf'} has shape ${formatShape(g.shape)}, expected ${formatShape(leaf.shape)}`);
    if (leaf.grad) {
      const sum = noGrad(() => addImpl!(leaf.grad!, g));
      untrackTensor(sum);
      leaf.grad.dispose();
      g.dispose();
      leaf.grad = sum;
    } else leaf.grad = ownedGradient(g);
  }
}

/**
 * Functional gradients: d(sum of outputs)/d(input) for each input, without touching `.grad`.
 * Inputs may be leaves or intermediate tensors. Returns null for an input the outputs do not depend on.
 */
export function grad(outputs: Tensor | Tensor[], inputs: Tensor[], options: GradOptions & { gradOutputs?: Tensor[] } = {}): (Tensor | null)[] {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const targets = new Set<unknown>(inputs.map((t) => t.gradNode ?? t));
  const { leafGrads, captured } = propagate(outs, options.gradOutputs ?? [], targets, options.retainGraph ?? false);
  return inputs.map((t) => {
    const g = t.gradNode ? captured.get(t.gradNode) : leafGrads.get(t);
    if (g) untrackTensor(g);
    return g ?? null;
  });
}
