import assert from 'node:assert/strict';
import { it } from 'node:test';
import { kindOf } from '../../core/errors.ts';
import { credentialsFor } from './image-pull.ts';
import { imageUser } from './image-view.ts';

it('AuthConfig is read as containerd reads it', () => {
  assert.equal(credentialsFor(undefined, 'r:5000'), undefined);
  assert.equal(credentialsFor({}, 'r:5000'), undefined);
  assert.deepEqual(credentialsFor({ username: 'u', password: 'p' }, 'r:5000'), { username: 'u', password: 'p' });
  const auth = Buffer.from('u:p:with:colons').toString('base64');
  assert.deepEqual(credentialsFor({ auth }, 'r:5000'), { username: 'u', password: 'p:with:colons' });
  assert.deepEqual(credentialsFor({ identity_token: 't' }, 'r:5000'), { username: '', password: 't' });
  // Credentials for another registry are not sent to this one.
  assert.equal(credentialsFor({ username: 'u', password: 'p', server_address: 'other:5000' }, 'r:5000'), undefined);
  assert.deepEqual(credentialsFor({ username: 'u', password: 'p', server_address: 'https://r:5000/v2/' }, 'r:5000'), { username: 'u', password: 'p' });
  assert.throws(() => credentialsFor({ auth: Buffer.from('nocolon').toString('base64') }, 'r:5000'), (err) => kindOf(err) === 'InvalidArgument');
  // A registry token alone is not supported: anonymous, as containerd.
  assert.equal(credentialsFor({ registry_token: 'x' }, 'r:5000'), undefined);
});

it("the image config's User gives a uid when numeric, a user name otherwise", () => {
  assert.deepEqual(imageUser(''), { username: '' });
  assert.deepEqual(imageUser('0'), { uid: '0', username: '' });
  assert.deepEqual(imageUser('1000:1000'), { uid: '1000', username: '' });
  assert.deepEqual(imageUser('nobody'), { username: 'nobody' });
  assert.deepEqual(imageUser('www-data:www-data'), { username: 'www-data' });
});
