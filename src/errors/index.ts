export {
  clientErrorCode,
  clientProblem,
  hostProblem,
  PROBLEM_CONTENT_TYPE,
  type Problem,
  pluginProblem,
  problemOf,
  statusOf,
} from './problem.js';
export {
  describeError,
  ERROR_CODES,
  type ErrorCode,
  type ErrorSpec,
  HostError,
  isHostError,
  type RecordedError,
  recordError,
} from './registry.js';
export { pluginNotFound } from './texts.js';
