// @anneal/quantization: nothing is exported yet. Its issue fills this package; until then it
// deliberately has no API (no placeholders).
export {};
