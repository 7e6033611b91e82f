import { randomInt } from 'node:crypto';

/**
 * Random container names in docker's style ("eager_turing"): an adjective and
 * the surname of a scientist or engineer. The lists are our own.
 */
const adjectives = [
  'agile', 'bold', 'brave', 'bright', 'calm', 'clever', 'cool', 'crisp', 'daring', 'eager', 'fair', 'fond', 'gentle',
  'glad', 'happy', 'humble', 'jolly', 'keen', 'kind', 'lucid', 'merry', 'modest', 'nimble', 'noble', 'patient',
  'plucky', 'proud', 'quick', 'quiet', 'rapid', 'serene', 'sharp', 'shy', 'steady', 'sunny', 'swift', 'tender',
  'tidy', 'upbeat', 'vivid', 'warm', 'wise', 'witty', 'zealous',
];
const surnames = [
  'babbage', 'bell', 'boole', 'carson', 'curie', 'darwin', 'dijkstra', 'einstein', 'euler', 'faraday', 'fermi',
  'feynman', 'franklin', 'galileo', 'gauss', 'goodall', 'hamilton', 'hopper', 'hypatia', 'johnson', 'kepler',
  'knuth', 'lamarr', 'lovelace', 'maxwell', 'meitner', 'mendel', 'newton', 'noether', 'pascal', 'pasteur',
  'ritchie', 'shannon', 'tesla', 'thompson', 'torvalds', 'turing', 'wozniak', 'yalow',
];

export function randomName(retry = 0): string {
  const name = `${adjectives[randomInt(adjectives.length)]}_${surnames[randomInt(surnames.length)]}`;
  return retry > 0 ? `${name}${randomInt(10)}` : name;
}
