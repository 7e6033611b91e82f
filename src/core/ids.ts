import { randomBytes } from 'node:crypto';

/** A 64-hex-character random id, as docker uses for containers and exec sessions. */
export function newId(): string {
  return randomBytes(32).toString('hex');
}

/** Container names as docker accepts them. */
export const namePattern = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
