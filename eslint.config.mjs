// Lint for the whole workspace. The important rule is Nx's module-boundary check:
// it enforces the dependency direction of DEVELOPERS.md with the tags set in each
// package.json ("nx": { "tags": [...] }):
//   app -> method -> training -> extension -> foundation -> core
// Methods never import each other; nothing imports upward.
import nx from '@nx/eslint-plugin';

export default [
  ...nx.configs['flat/base'],
  ...nx.configs['flat/typescript'],
  { ignores: ['**/dist', '**/node_modules', '**/runs', '**/.nx'] },
  {
    files: ['**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          allow: [],
          banTransitiveDependencies: true,
          depConstraints: [
            { sourceTag: 'layer:core', onlyDependOnLibsWithTags: ['layer:core'] },
            { sourceTag: 'layer:backend', onlyDependOnLibsWithTags: ['layer:core'] },
            { sourceTag: 'layer:foundation', onlyDependOnLibsWithTags: ['layer:core'] },
            { sourceTag: 'layer:extension', onlyDependOnLibsWithTags: ['layer:foundation', 'layer:core'] },
            {
              sourceTag: 'layer:training',
              onlyDependOnLibsWithTags: ['layer:extension', 'layer:foundation', 'layer:core'],
            },
            {
              sourceTag: 'layer:method',
              onlyDependOnLibsWithTags: ['layer:training', 'layer:extension', 'layer:foundation', 'layer:core'],
            },
            {
              sourceTag: 'type:app',
              onlyDependOnLibsWithTags: [
                'layer:method',
                'layer:training',
                'layer:extension',
                'layer:foundation',
                'layer:core',
                'layer:backend',
              ],
            },
          ],
        },
      ],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
];
