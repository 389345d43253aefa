import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'test-artifacts/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        URL: 'readonly',
        Buffer: 'readonly',
        fetch: 'readonly',
        AbortSignal: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'Read settings through src/shared/config.ts only.' },
      ],
    },
  },
  // The sandbox's and the CLI's settings are their own (not Lifeline's), each read in one place as src/shared/config.ts reads
  // Lifeline's.
  {
    files: ['src/shared/config.ts', 'src/sandbox/settings.ts', 'src/delivery/cli/settings.ts', 'test/**', 'bench/**'],
    rules: { 'no-restricted-properties': 'off' },
  },
  // Tool configs that their tools load as CommonJS.
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } },
  },
  // The sandbox's page script runs in the browser.
  {
    files: ['src/sandbox/web/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: { document: 'readonly', localStorage: 'readonly', EventSource: 'readonly', Element: 'readonly' },
    },
  },
);
