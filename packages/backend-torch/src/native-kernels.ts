// tfjs kernels that run natively in ATen, with the order in which their named inputs
// are handed to the addon ('*' = the inputs are a list, as for Concat/Pack/AddN).
const BINARY = ['Add', 'Sub', 'Multiply', 'RealDiv', 'FloorDiv', 'Maximum', 'Minimum', 'Pow', 'SquaredDifference', 'Mod',
  'Less', 'LessEqual', 'Greater', 'GreaterEqual', 'Equal', 'NotEqual', 'LogicalAnd', 'LogicalOr', 'BatchMatMul'];
const UNARY = ['Neg', 'Exp', 'Log', 'Log1p', 'Expm1', 'Sqrt', 'Rsqrt', 'Square', 'Abs', 'Tanh', 'Sigmoid', 'Relu', 'Erf',
  'Sin', 'Cos', 'Floor', 'Ceil', 'Round', 'Sign', 'Reciprocal', 'LogicalNot', 'IsNan', 'IsInf', 'IsFinite', 'Step',
  'LeakyRelu', 'Elu', 'ClipByValue', 'ZerosLike', 'OnesLike', 'Identity', 'Cast', 'Reshape', 'Transpose', 'Sum', 'Mean',
  'Prod', 'Max', 'Min', 'All', 'Any', 'ArgMax', 'ArgMin', 'Slice', 'Tile', 'PadV2', 'SplitV'];

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
  Cumsum: ['x'],
  Concat: '*',
  Pack: '*',
  AddN: '*',
};
