/** Base class of every error the engine raises on purpose. */
export class EngineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}
/** A WebGPU validation error reported by the device (a bug in a kernel or a limit exceeded). */
export class GpuValidationError extends EngineError {}
/** The device could not allocate memory. */
export class GpuOutOfMemoryError extends EngineError {}
/** The device was lost (driver reset, destroy(), or the process is shutting down). */
export class GpuDeviceLostError extends EngineError {}
/** No WebGPU adapter could be found. */
export class NoAdapterError extends EngineError {}
/** Shapes, dtypes or arguments that an op cannot accept. */
export class ShapeError extends EngineError {}
/** A tensor was used after dispose(). */
export class DisposedTensorError extends EngineError {}
