import oclif from 'eslint-config-oclif'
import prettier from 'eslint-config-prettier'

export default [
  {ignores: ['dist/', 'node_modules/', 'coverage/', 'tmp/']},
  ...oclif,
  prettier,
  {
    rules: {
      // Commands and tests exit explicitly with the product's exit codes.
      'n/no-process-exit': 'off',
      'unicorn/no-process-exit': 'off',
      // Node16 resolution with .js suffixes is checked by tsc; the import plugin cannot follow it.
      'import/no-unresolved': 'off',
      'n/no-missing-import': 'off',
      'unicorn/prefer-top-level-await': 'off',
      'unicorn/no-null': 'off',
      'no-await-in-loop': 'off',
      'unicorn/prefer-event-target': 'off',
      'perfectionist/sort-classes': 'off',
      'perfectionist/sort-objects': 'off',
      'perfectionist/sort-object-types': 'off',
      'perfectionist/sort-interfaces': 'off',
      'perfectionist/sort-union-types': 'off',
      'perfectionist/sort-switch-case': 'off',
      'perfectionist/sort-modules': 'off',
      'unicorn/filename-case': ['error', {case: 'kebabCase'}],
      'unicorn/no-array-reduce': 'off',
      'unicorn/no-array-callback-reference': 'off',
      'unicorn/prefer-string-raw': 'off',
      'unicorn/text-encoding-identifier-case': 'off',
      'unicorn/prevent-abbreviations': 'off',
      'mocha/no-setup-in-describe': 'off',
      'mocha/max-top-level-suites': 'off',
      'no-control-regex': 'off',
      'unicorn/no-hex-escape': 'off',
      'unicorn/escape-case': 'off',
      'n/no-unsupported-features/node-builtins': 'off',
      // Wire formats (audit records, --json results, protocols) are snake_case by contract.
      camelcase: 'off',
      // fast-check is used through its default export, as its docs do.
      'import/no-named-as-default-member': 'off',
      // Hashing and byte scanning in the masker and sealing code.
      'no-bitwise': 'off',
      'no-undef': 'off',
    },
  },
  {
    // CommonJS on purpose (bin/run.cjs, src/launch.cts: the start without the ES module loader).
    files: ['**/*.cjs', '**/*.cts'],
    rules: {
      '@typescript-eslint/no-require-imports': 'off',
      'unicorn/prefer-module': 'off',
    },
  },
]
