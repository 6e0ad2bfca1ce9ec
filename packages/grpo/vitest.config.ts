import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'grpo',
    environment: 'node',
    include: ['src/**/*.test.ts'],
    testTimeout: 120_000,
  },
});
