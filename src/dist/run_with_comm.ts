/**
 * Running a rank's work so that a failure ends the whole job instead of leaving the other ranks
 * waiting in a collective: on an error the job is aborted with a message naming this rank; on
 * success the communicator is disposed (a barrier bounded by the timeout, then finalise).
 *
 * @module
 */

import type { Comm } from "./comm.ts";

function describe(e: unknown): string {
  if (e instanceof Error) return e.stack ?? `${e.name}: ${e.message}`;
  return String(e);
}

/**
 * Runs `body(comm)`. If it throws (or rejects) in a job of several processes, `comm.abort(1, …)`
 * ends every rank with the error and this rank's number; in a job of one, the communicator is
 * disposed and the error rethrown. On success the communicator is disposed and the value returned.
 */
export async function runWithComm<T>(
  comm: Comm,
  body: (comm: Comm) => T | Promise<T>,
): Promise<T> {
  let value: T;
  try {
    value = await body(comm);
  } catch (e) {
    if (comm.size > 1) comm.abort(1, `failed, ending the job: ${describe(e)}`);
    comm.dispose();
    throw e;
  }
  comm.dispose();
  return value;
}
