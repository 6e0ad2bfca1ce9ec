export { main } from './main.js';
export { plainReporter, ttyReporter } from './progress.js';
