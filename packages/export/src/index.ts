export {
  exportOnnx,
  onnxModelBytes,
  onnxModelFiles,
  ONNX_ARCHITECTURES,
  ONNX_CHUNK_BYTES,
  ONNX_INLINE_LIMIT,
  ONNX_IR_VERSION,
  ONNX_OPSET,
  ONNX_OPSETS,
  ONNX_VARIANTS,
  type OnnxVariant,
  type OnnxExportOptions,
  type OnnxExportResult,
} from './onnx-export.js';
export {
  OnnxGraph,
  quantizeRows,
  toFloat16,
  type Attr,
  type Dim,
  type ExternalDataOptions,
  type WeightFormat,
} from './onnx/graph.js';
export {
  PushError,
  checkRepoId,
  hfToken,
  pushFiles,
  type PushFile,
  type PushOptions,
  type PushResult,
} from './hub/push.js';
export { modelCard, pipelineTagOf, type CardInput } from './hub/card.js';
