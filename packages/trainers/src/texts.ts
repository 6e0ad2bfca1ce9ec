// The texts of a text-format training source, for training a tokenizer on them (MLM, T5 span
// corruption): the data config's text column, row by row.
import { ConfigError } from '@anneal/core';
import { readRows, type DataConfig } from '@anneal/data';

export async function* trainingTexts(data: DataConfig): AsyncGenerator<string> {
  const src = data.train;
  if (typeof src !== 'string' && 'hub' in src)
    throw new ConfigError('training a tokenizer on a Hub dataset is not supported; give tokenizer.path', {
      field: 'tokenizer.train',
    });
  const col = data.columns.text ?? 'text';
  for await (const { row } of readRows(typeof src === 'string' ? { path: src } : src))
    if (typeof row[col] === 'string') yield row[col] as string;
}
