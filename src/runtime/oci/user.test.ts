import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isInvalidArgument } from '../../core/errors.ts';
import { parseGroup, parsePasswd, resolveUser } from './user.ts';

const passwd = `root:x:0:0:root:/root:/bin/sh
# comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
app:x:1000:1000::/home/app:/bin/sh
broken:x:notanumber:1::/:/bin/sh
`;
const group = `root:x:0:
adm:x:4:app
audio:x:29:app,www-data
www-data:x:33:
app:x:1000:
staff:x:50:
`;

describe('passwd and group parsing', () => {
  it('parses entries and skips comments and malformed lines', () => {
    const p = parsePasswd(passwd);
    assert.deepEqual(p.map((e) => e.name), ['root', 'daemon', 'www-data', 'app']);
    assert.deepEqual(p[2], { name: 'www-data', uid: 33, gid: 33, home: '/var/www', shell: '/usr/sbin/nologin' });
    const g = parseGroup(group);
    assert.deepEqual(g[2], { name: 'audio', gid: 29, members: ['app', 'www-data'] });
  });
});

describe('resolveUser', () => {
  const r = (user: string, groupAdd?: string[]) => resolveUser({ user, groupAdd, passwd, group });
  it('defaults to root', () => {
    assert.deepEqual(r(''), { uid: 0, gid: 0, additionalGids: [], home: '/root' });
    assert.deepEqual(resolveUser({}), { uid: 0, gid: 0, additionalGids: [], home: '/' });
  });
  it('resolves a name with its primary group and the groups listing it', () => {
    assert.deepEqual(r('app'), { uid: 1000, gid: 1000, additionalGids: [4, 29], home: '/home/app' });
  });
  it('resolves a uid in passwd like its name', () => {
    assert.deepEqual(r('33'), { uid: 33, gid: 33, additionalGids: [29], home: '/var/www' });
  });
  it('accepts a numeric uid absent from passwd, with gid 0', () => {
    assert.deepEqual(r('4242'), { uid: 4242, gid: 0, additionalGids: [], home: '/' });
    assert.deepEqual(resolveUser({ user: '5:6' }), { uid: 5, gid: 6, additionalGids: [], home: '/' });
  });
  it('takes an explicit group by name or gid and then adds no supplementary groups', () => {
    assert.deepEqual(r('app:staff'), { uid: 1000, gid: 50, additionalGids: [], home: '/home/app' });
    assert.deepEqual(r('app:4'), { uid: 1000, gid: 4, additionalGids: [], home: '/home/app' });
    assert.deepEqual(r('app:777'), { uid: 1000, gid: 777, additionalGids: [], home: '/home/app' });
  });
  it('gives docker error messages for unknown names', () => {
    assert.throws(() => r('nobody'), (e) => isInvalidArgument(e) && (e as Error).message === 'unable to find user nobody: no matching entries in passwd file');
    assert.throws(() => r('app:wheel'), (e) => isInvalidArgument(e) && /unable to find group wheel: no matching entries in group file/.test((e as Error).message));
    assert.throws(() => resolveUser({ user: 'app' }), isInvalidArgument);
  });
  it('rejects ids out of range', () => {
    assert.throws(() => r('-1'), (e) => isInvalidArgument(e) && /range 0-2147483647/.test((e as Error).message));
    assert.throws(() => r('0:2147483648'), isInvalidArgument);
  });
  it('adds --group-add groups by name or number, without duplicates', () => {
    assert.deepEqual(r('app', ['staff', '29', '9000']).additionalGids, [4, 29, 50, 9000]);
    assert.throws(() => r('app', ['nogroup']), isInvalidArgument);
  });
});

describe('the CRI rule for member groups', () => {
  it('adds the groups the user is listed in even with a group given, then the supplemental ones', () => {
    const r = resolveUser({ user: '1000:2000', groupAdd: ['3000'], passwd, group, memberGroupsAlways: true });
    assert.deepEqual({ uid: r.uid, gid: r.gid, additionalGids: r.additionalGids }, { uid: 1000, gid: 2000, additionalGids: [4, 29, 3000] });
    // runc's and docker's rule: an explicit group leaves them out.
    assert.deepEqual(resolveUser({ user: '1000:2000', passwd, group }).additionalGids, []);
  });
});
