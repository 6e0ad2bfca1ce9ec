import { defineConfig } from 'vitest/config';

// One vitest project per package/app (each has its own vitest.config.ts, which is
// also how Nx infers the `test` target); `vitest run` at the root runs them all.
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*', 'test'],
  },
});
