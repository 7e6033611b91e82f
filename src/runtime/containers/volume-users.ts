import type { MountSpec } from '../../core/containers.ts';

/**
 * Which containers' configs mount a named volume, by namespace: what
 * `volume rm` and `volume prune` ask before removing one. Kept in memory,
 * filled at create and by recovery at daemon start, emptied at removal.
 */
export class VolumeUsers {
  /** `<namespace>/<volume name>` -> container ids. */
  readonly #users = new Map<string, string[]>();

  of(ns: string, name: string): string[] {
    return this.#users.get(`${ns}/${name}`) ?? [];
  }

  track(ns: string, id: string, mounts: MountSpec[]): void {
    for (const m of mounts) {
      if (m.type !== 'volume' || !m.source) continue;
      const key = `${ns}/${m.source}`;
      const users = this.#users.get(key) ?? [];
      if (!users.includes(id)) users.push(id);
      this.#users.set(key, users);
    }
  }

  untrack(ns: string, id: string): void {
    for (const [key, users] of this.#users) {
      if (!key.startsWith(`${ns}/`)) continue;
      const rest = users.filter((u) => u !== id);
      if (rest.length) this.#users.set(key, rest);
      else this.#users.delete(key);
    }
  }
}
