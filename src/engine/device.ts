import { GpuContext, type DeviceCapabilities } from './gpu-context';
import { NoAdapterError } from './errors';

export interface DeviceOptions {
  /** Ask for f16 storage/arithmetic if the adapter has it (default true). */
  f16?: boolean;
  /** Ask for subgroup matrices (tensor cores) if the adapter has them (default true). */
  subgroupMatrix?: boolean;
  /** Prefer a high-performance adapter (default true). */
  powerPreference?: GPUPowerPreference;
  /** Extra Dawn toggles for Node (added to the defaults). */
  dawnToggles?: string[];
}

/** One shape the device's subgroup matrices (tensor cores) support: M×K · K×N → M×N. */
export interface SubgroupMatrixConfig {
  componentType: string;
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}

/**
 * Capabilities beyond `DeviceCapabilities` that the subgroup-matrix matmul needs: the supported
 * matrix configs (`adapter.info.subgroupMatrixConfigs`, empty without the feature) and the subgroup
 * size range (`adapter.info.subgroupMinSize/MaxSize`, 0 when the adapter does not report them).
 */
export interface SubgroupMatrixCaps {
  subgroupMatrixConfigs: SubgroupMatrixConfig[];
  subgroupMinSize: number;
  subgroupMaxSize: number;
}

/** The device limits the engine reads (`DeviceCapabilities.limits`) plus the workgroup sizes its kernels declare. */
const USED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'minUniformBufferOffsetAlignment',
] as const;

const OPTIONAL_FEATURES = ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix', 'timestamp-query'] as const;

const INSTALL_HINT =
  'No WebGPU adapter was found. On Debian/Ubuntu without a GPU install the CPU Vulkan driver (Mesa lavapipe): ' +
  '`sudo bash scripts/setup.sh` (Debian 12: mesa-vulkan-drivers and libvulkan1 from bookworm-backports). ' +
  'With an NVIDIA GPU, install the NVIDIA driver with Vulkan support. In a browser, use one with WebGPU enabled.';

function isNode(): boolean {
  return typeof process !== 'undefined' && !!process.versions?.node && typeof (globalThis as { window?: unknown }).window === 'undefined';
}

let nodeGpu: GPU | null = null;

/** The Dawn GPU object in Node once a context was created (benchmarks hand it to peer libraries). */
export function nodeGpuInstance(): GPU | null {
  return nodeGpu;
}

/**
 * Dawn's Node addon. NVIDIA drivers hide f16 and subgroup matrices unless these toggles are on;
 * they are harmless elsewhere.
 */
async function nodeNavigatorGpu(extraToggles: string[]): Promise<GPU> {
  if (nodeGpu) return nodeGpu;
  const moduleName = 'webgpu';
  // A variable specifier keeps browser bundlers from pulling in the Node addon.
  const mod = (await import(/* @vite-ignore */ moduleName)) as { create: (flags: string[]) => GPU; globals: object };
  Object.assign(globalThis, mod.globals);
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = '/tmp';
  const features = ['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia', 'use_vulkan_memory_model', ...extraToggles];
  const flags = [`enable-dawn-features=${features.join(',')}`];
  if (process.platform === 'linux') flags.unshift('backend=vulkan');
  nodeGpu = mod.create(flags);
  return nodeGpu;
}

/** Returns a ready WebGPU context: Dawn in Node, `navigator.gpu` in a browser. */
export async function createGpuContext(options: DeviceOptions = {}): Promise<GpuContext> {
  let gpu: GPU | undefined;
  if (typeof navigator !== 'undefined' && (navigator as Navigator).gpu) gpu = (navigator as Navigator).gpu;
  else if (isNode()) gpu = await nodeNavigatorGpu(options.dawnToggles ?? []);
  if (!gpu) throw new NoAdapterError(INSTALL_HINT);
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) throw new NoAdapterError(INSTALL_HINT);

  const wanted = OPTIONAL_FEATURES.filter((f) => {
    if (f === 'shader-f16' && options.f16 === false) return false;
    if (f === 'chromium-experimental-subgroup-matrix' && options.subgroupMatrix === false) return false;
    return adapter.features.has(f);
  });
  // Ask for the adapter's best value of each limit the kernels use: the defaults (e.g. 128 MiB bindings,
  // 16 KiB shared memory) are lower. Only these: a limit an implementation lists but does not know how to
  // grant (wgpu lists native-only ones) must not be able to fail requestDevice. Dawn's two
  // "maxDynamic…BuffersPerPipelineLayout artificially reduced" lines come earlier, from its adapter
  // discovery on lavapipe (docs/ENGINE.md, "Dawn and wgpu").
  const requiredLimits: Record<string, number> = {};
  const limits = adapter.limits as unknown as Record<string, number>;
  for (const key of USED_LIMITS) {
    const value = limits[key];
    if (typeof value === 'number') requiredLimits[key] = value;
  }
  const device = await adapter.requestDevice({ requiredFeatures: wanted as GPUFeatureName[], requiredLimits });
  const info = adapter.info ?? ({} as GPUAdapterInfo);
  const subgroupMatrix = device.features.has('chromium-experimental-subgroup-matrix');
  const rawConfigs = subgroupMatrix ? ((info as unknown as { subgroupMatrixConfigs?: Iterable<SubgroupMatrixConfig> }).subgroupMatrixConfigs ?? []) : [];
  const caps: DeviceCapabilities & SubgroupMatrixCaps = {
    f16: device.features.has('shader-f16'),
    subgroups: device.features.has('subgroups'),
    subgroupMatrix,
    subgroupMatrixConfigs: Array.from(rawConfigs, (c) => ({ componentType: c.componentType, resultComponentType: c.resultComponentType, M: c.M, N: c.N, K: c.K })),
    subgroupMinSize: info.subgroupMinSize ?? 0,
    subgroupMaxSize: info.subgroupMaxSize ?? 0,
    timestampQuery: device.features.has('timestamp-query'),
    software: info.architecture === 'software' || info.architecture === 'swiftshader' || /llvmpipe|swiftshader|lavapipe/i.test(`${info.device} ${info.description}`),
    largeRegisterBlocks: /llvmpipe|lavapipe/i.test(`${info.device} ${info.description}`),
    limits: {
      maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
      maxBufferSize: device.limits.maxBufferSize,
      maxComputeWorkgroupStorageSize: device.limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: device.limits.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupsPerDimension: device.limits.maxComputeWorkgroupsPerDimension,
      maxStorageBuffersPerShaderStage: device.limits.maxStorageBuffersPerShaderStage,
      minUniformBufferOffsetAlignment: device.limits.minUniformBufferOffsetAlignment,
    },
    adapter: {
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
      device: info.device ?? '',
      description: info.description ?? '',
    },
  };
  return new GpuContext(device, caps);
}
