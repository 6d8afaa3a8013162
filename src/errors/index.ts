export { describeValue } from './describe-value.js';
export { ERROR_CODES, type ErrorCode, GrpcStatus, SlipwayError, toSlipwayError } from './errors.js';
export { fileProblem } from './file-problem.js';
