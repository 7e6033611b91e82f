/**
 * Builds the quickstart's demo image from the host's busybox-static (no
 * engine, no network) and pushes it to the registry named in REF with
 * skopeo. Usage: node scripts/quickstart-image.ts LAYOUT_DIR REF
 */
import { buildImage, busyboxImage, pushToRegistry } from '../test/helpers/image-builder.ts';

const [layout, ref] = process.argv.slice(2);
if (!layout || !ref) {
  process.stderr.write('usage: quickstart-image.ts LAYOUT_DIR HOST:PORT/NAME:TAG\n');
  process.exit(2);
}
const tag = ref.slice(ref.lastIndexOf(':') + 1);
await buildImage(layout, busyboxImage([{ files: [{ path: 'etc/motd', content: 'Hello from berth!\n' }], createdBy: 'add /etc/motd' }], { Cmd: ['cat', '/etc/motd'] }), { tag });
await pushToRegistry(layout, ref, { tag });
