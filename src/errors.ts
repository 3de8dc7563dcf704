// Errors that say what kind of refusal they are, without naming a transport: domain code
// (the daemon's runtime, the views) throws these; the control server maps them to HTTP in one
// place (control/server.ts), the CLI to exit codes.

/** A VIP, backend or other named thing does not exist. */
export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
}

/** The request itself is wrong (a bad prefix, a missing field). */
export class InvalidInputError extends Error {
  override readonly name = 'InvalidInputError';
}

/** A well-formed request the daemon will not carry out (a config it refuses); `issues` says why, one line each. */
export class RejectedError extends Error {
  override readonly name = 'RejectedError';
  constructor(
    message: string,
    readonly issues: string[] = [],
  ) {
    super(message);
  }
}
