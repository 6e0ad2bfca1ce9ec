// One rank of the collectives test (dist.test.ts starts two of these): joins the group
// from the environment, all-reduces and broadcasts, and prints what it got as JSON.
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '@anneal/core';
import { processGroupFromEnv, registerTorchBackend } from './index.js';

registerTorchBackend({ warn: () => undefined });
await useBackend('torch', {});
const pg = processGroupFromEnv()!;
const r = pg.rank;
const big = tf.fill([3_000_000], r + 1); // 12 MB: with the others, more than one 25 MB bucket
const [a, b, c] = pg.allReduce(
  [
    tf.tensor1d([r + 1, 10 * (r + 1)]),
    tf.tensor2d([
      [r, r],
      [r, r],
    ]),
    big,
  ],
  'sum',
);
const [avg] = pg.allReduce([tf.tensor1d([r])], 'avg');
const [bc] = pg.broadcast([tf.tensor1d([r + 100, r + 200])], 1);
pg.barrier();
const cSum = c.sum().dataSync()[0];
console.log(
  JSON.stringify({
    rank: r,
    a: Array.from(a.dataSync()),
    b: Array.from(b.dataSync()),
    bShape: b.shape,
    cSum,
    avg: Array.from(avg.dataSync()),
    bc: Array.from(bc.dataSync()),
  }),
);
pg.destroy();
