import * as tf from '@tensorflow/tfjs-core';

/** Versions recorded in every checkpoint so a run can be reproduced. */
export function packageVersions(): Record<string, string> {
  return { anneal: '0.1.0', '@tensorflow/tfjs-core': tf.version_core, node: process.version };
}
