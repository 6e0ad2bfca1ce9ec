import { describe, expect, it } from 'vitest';
import * as api from './index.js';

describe('@anneal/ppo', () => {
  it('exports no placeholder API before its issue fills it', () => {
    expect(Object.keys(api)).toEqual([]);
  });
});
