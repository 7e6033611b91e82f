import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeInteger, encodeInteger, encodeLiteralBlock, HpackDecoder, HpackError, huffmanDecode, huffmanEncode } from './hpack.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const pairs = (fields: { name: string; value: string }[]) => fields.map((f) => [f.name, f.value]);

describe('HPACK (RFC 7541)', () => {
  it('decodes and encodes the integers of C.1', () => {
    assert.deepEqual(decodeInteger(hex('0a'), 0, 5), { value: 10, next: 1 });
    assert.deepEqual(decodeInteger(hex('1f9a0a'), 0, 5), { value: 1337, next: 3 });
    assert.deepEqual(decodeInteger(hex('2a'), 0, 8), { value: 42, next: 1 });
    assert.deepEqual(encodeInteger(10, 5), [0x0a]);
    assert.deepEqual(encodeInteger(1337, 5), [0x1f, 0x9a, 0x0a]);
    assert.deepEqual(encodeInteger(42, 8), [0x2a]);
    assert.throws(() => decodeInteger(hex('1f9a'), 0, 5), HpackError);
    assert.throws(() => decodeInteger(hex('1fffffffff0f'), 0, 5), /too large/);
  });

  it('decodes the header field representations of C.2', () => {
    const dec = new HpackDecoder();
    assert.deepEqual(pairs(dec.decode(hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'))), [['custom-key', 'custom-header']]);
    assert.deepEqual(dec.dynamicTable, { size: 55, entries: [['custom-key', 'custom-header']] });
    assert.deepEqual(pairs(new HpackDecoder().decode(hex('040c 2f73 616d 706c 652f 7061 7468'))), [[':path', '/sample/path']]);
    const secret = new HpackDecoder();
    assert.deepEqual(secret.decode(hex('1008 7061 7373 776f 7264 0673 6563 7265 74')), [{ name: 'password', value: 'secret', sensitive: true }]);
    assert.equal(secret.dynamicTable.size, 0);
    assert.deepEqual(pairs(new HpackDecoder().decode(hex('82'))), [[':method', 'GET']]);
  });

  const requests = [
    [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']],
    [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['cache-control', 'no-cache']],
    [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']],
  ];

  it('follows the dynamic table over the requests of C.3 (no Huffman)', () => {
    const dec = new HpackDecoder();
    assert.deepEqual(pairs(dec.decode(hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d'))), requests[0]);
    assert.equal(dec.dynamicTable.size, 57);
    assert.deepEqual(pairs(dec.decode(hex('8286 84be 5808 6e6f 2d63 6163 6865'))), requests[1]);
    assert.equal(dec.dynamicTable.size, 110);
    assert.deepEqual(pairs(dec.decode(hex('8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65'))), requests[2]);
    assert.deepEqual(dec.dynamicTable, {
      size: 164,
      entries: [['custom-key', 'custom-value'], ['cache-control', 'no-cache'], [':authority', 'www.example.com']],
    });
  });

  it('follows the dynamic table over the requests of C.4 (Huffman)', () => {
    const dec = new HpackDecoder();
    assert.deepEqual(pairs(dec.decode(hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'))), requests[0]);
    assert.deepEqual(pairs(dec.decode(hex('8286 84be 5886 a8eb 1064 9cbf'))), requests[1]);
    assert.deepEqual(pairs(dec.decode(hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'))), requests[2]);
    assert.equal(dec.dynamicTable.size, 164);
  });

  it('evicts from a 256-octet table over the responses of C.6 (Huffman)', () => {
    const dec = new HpackDecoder(256);
    const date1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
    assert.deepEqual(
      pairs(dec.decode(hex('4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3'))),
      [[':status', '302'], ['cache-control', 'private'], ['date', date1], ['location', 'https://www.example.com']],
    );
    assert.equal(dec.dynamicTable.size, 222);
    assert.deepEqual(pairs(dec.decode(hex('4883 640e ffc1 c0bf'))), [
      [':status', '307'], ['cache-control', 'private'], ['date', date1], ['location', 'https://www.example.com'],
    ]);
    assert.equal(dec.dynamicTable.size, 222);
    assert.deepEqual(
      pairs(dec.decode(hex(
        '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
      ))),
      [
        [':status', '200'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'], ['location', 'https://www.example.com'],
        ['content-encoding', 'gzip'], ['set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1'],
      ],
    );
    assert.equal(dec.dynamicTable.size, 215);
    assert.equal(dec.dynamicTable.entries.length, 3);
  });

  it('Huffman-codes as C.4 does, and every octet round-trips', () => {
    assert.deepEqual(huffmanEncode(Buffer.from('www.example.com')), hex('f1e3 c2e5 f23a 6ba0 ab90 f4ff'));
    assert.deepEqual(huffmanEncode(Buffer.from('no-cache')), hex('a8eb 1064 9cbf'));
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    assert.deepEqual(huffmanDecode(huffmanEncode(all)), all);
    assert.deepEqual(huffmanDecode(huffmanEncode(Buffer.from('/run/berth/cri.sock'))).toString(), '/run/berth/cri.sock');
  });

  it('refuses malformed blocks', () => {
    assert.throws(() => new HpackDecoder().decode(hex('80')), /index 0/);
    assert.throws(() => new HpackDecoder().decode(hex('be')), /not in the table/);
    assert.throws(() => new HpackDecoder().decode(hex('4005 6162')), /past the end/);
    // A size update after a field, and one above the limit.
    assert.throws(() => new HpackDecoder().decode(hex('82 20')), /after a header field/);
    assert.throws(() => new HpackDecoder(4096).decode(hex('3fe2 1f')), /above the limit/);
    // Padding of zeros, padding of 8 bits, and EOS itself in a string.
    assert.throws(() => huffmanDecode(hex('f1e3 c2e5 f23a 6ba0 ab90 f400')), /padding/);
    assert.throws(() => huffmanDecode(hex('ff')), /padding longer/);
    assert.throws(() => huffmanDecode(hex('ffff fffc')), /EOS/);
  });

  it('re-encodes fields as literals that index nothing, keeping never-indexed ones so', () => {
    const fields = [
      { name: ':authority', value: 'localhost' },
      { name: ':path', value: '/runtime.v1.RuntimeService/Version' },
      { name: 'x-custom', value: 'v\u00ff' },
      { name: 'authorization', value: 'secret', sensitive: true },
    ];
    const block = encodeLiteralBlock(fields);
    assert.equal(block[0], 0x01, ':authority by static name index 1, without indexing');
    const dec = new HpackDecoder();
    assert.deepEqual(dec.decode(block), fields);
    assert.equal(dec.dynamicTable.size, 0);
  });
});
