// tfjs kernels that run natively in ATen, with the order in which their named inputs
// are handed to the addon ('*' = the inputs are a list, as for Concat/Pack/AddN).
const BINARY = ['Add', 'Sub', 'Multiply', 'RealDiv', 'FloorDiv', 'Maximum', 'Minimum', 'Pow', 'SquaredDifference', 'Mod',
  'Less', 'LessEqual', 'Greater', 'GreaterEqual', 'Equal', 'NotEqual', 'LogicalAnd', 'LogicalOr', 'BatchMatMul', 'Atan2'];
const UNARY = ['Neg', 'Exp', 'Log', 'Log1p', 'Expm1', 'Sqrt', 'Rsqrt', 'Square', 'Abs', 'Tanh', 'Sigmoid', 'Relu', 'Erf',
  'Sin', 'Cos', 'Floor', 'Ceil', 'Round', 'Sign', 'Reciprocal', 'LogicalNot', 'IsNan', 'IsInf', 'IsFinite', 'Step',
  'LeakyRelu', 'Elu', 'ClipByValue', 'ZerosLike', 'OnesLike', 'Identity', 'Cast', 'Reshape', 'Transpose', 'Sum', 'Mean',
  'Prod', 'Max', 'Min', 'All', 'Any', 'ArgMax', 'ArgMin', 'Slice', 'Tile', 'PadV2', 'SplitV', 'Softplus', 'Relu6', 'Selu',
  'Tan', 'Asin', 'Acos', 'Atan', 'Sinh', 'Cosh', 'Asinh', 'Acosh', 'Atanh', 'Reverse', 'TopK', 'StridedSlice', 'Cumsum',
  'Cumprod'];

export const NATIVE_KERNELS: Record<string, string[] | '*'> = {
  ...Object.fromEntries(BINARY.map((k) => [k, ['a', 'b']])),
  ...Object.fromEntries(UNARY.map((k) => [k, ['x']])),
  Softmax: ['logits'],
  Unpack: ['value'],
  GatherV2: ['x', 'indices'],
  UnsortedSegmentSum: ['x', 'segmentIds'],
  OneHot: ['indices'],
  Select: ['condition', 't', 'e'],
  Fill: [],
  Range: [],
  LinSpace: [],
  ExpandDims: ['input'],
  Prelu: ['x', 'alpha'],
  EluGrad: ['dy', 'y'],
  Multinomial: ['logits'],
  GatherNd: ['params', 'indices'],
  ScatterNd: ['indices', 'updates'],
  Concat: '*',
  Pack: '*',
  AddN: '*',
};

/** Native kernels that return several tensors (the others return one). */
export const MULTI_OUTPUT = new Set(['SplitV', 'Unpack', 'TopK']);
