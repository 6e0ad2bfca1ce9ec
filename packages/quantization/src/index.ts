// @anneal/quantization: 4-bit (NF4, FP4; bitsandbytes' code books) and int8 storage of weights.
export { FP4_CODE, NF4_CODE, dynamicMap } from './codebooks.js';
export {
  blockScales,
  dequantize4bit,
  quantize4bit,
  storedBytes4bit,
  type FourBitType,
  type NestedScales,
  type Quantized4bit,
} from './blockwise.js';
export { dequantizeInt8Rows, quantizeInt8Rows, storedBytesInt8, type QuantizedInt8 } from './int8.js';
export {
  QuantizationConfigSchema,
  dequantize,
  isQuantized,
  loadQuantized,
  quantizedLayers,
  quantize,
  saveQuantized,
  storedQuantization,
  type QuantizationConfig,
  type QuantizationReport,
} from './quantize-model.js';
export { bnbQuantizationConfig } from './bnb-format.js';
export { QuantLinear, type StoredWeight } from './quant-linear.js';
