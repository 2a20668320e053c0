export { startForwarder } from './forwarder.js';
export type { ActiveMode, BoundListener, Forwarder, ForwarderOptions, ForwardSpec, SshOptions } from './forwarder.js';
export { checkExitCode, checkSetup } from './check/checkSetup.js';
export type { CheckStatus, CheckStep } from './check/checkSetup.js';
export { EXIT_CODES, exitCodeFor, FtpfwdError, isFtpfwdError } from './errors.js';
export type { FtpfwdErrorCode } from './errors.js';
export { createLogger } from './log.js';
export type { LogFormat, LoggerOptions } from './log.js';
export type { StrictHostKeyChecking } from './ssh/hostKeyVerifier.js';
