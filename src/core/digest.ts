import { createHash } from 'node:crypto';
import { berthError } from './errors.ts';

/** An OCI content digest, `algorithm:hex`. Only sha256 and sha512 are accepted. */
export type Digest = `${string}:${string}`;

const digestPattern = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

export function isDigest(s: string): s is Digest {
  return digestPattern.test(s);
}

export function parseDigest(s: string): Digest {
  if (!isDigest(s)) throw berthError('InvalidArgument', `invalid digest "${s}"`);
  return s;
}

export function digestOf(data: string | Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function algorithmOf(d: Digest): 'sha256' | 'sha512' {
  return d.slice(0, d.indexOf(':')) as 'sha256' | 'sha512';
}

export function hexOf(d: Digest): string {
  return d.slice(d.indexOf(':') + 1);
}

/** Docker's 12-character short id of a digest or id. */
export function shortId(d: string): string {
  return (d.includes(':') ? d.slice(d.indexOf(':') + 1) : d).slice(0, 12);
}
