export {
  exportOnnx,
  onnxModelBytes,
  ONNX_ARCHITECTURES,
  ONNX_IR_VERSION,
  ONNX_OPSET,
  type OnnxExportOptions,
  type OnnxExportResult,
} from './onnx-export.js';
export { OnnxGraph, type Attr, type Dim } from './onnx/graph.js';
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
