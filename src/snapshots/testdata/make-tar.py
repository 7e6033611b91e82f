# Writes a pax tar to stdout from a JSON list of entries on stdin, for tests:
# {"name", "type": file|dir|symlink|hardlink|char|block|fifo, "data", "mode",
#  "uid", "gid", "linkname", "major", "minor", "mtime", "xattrs": {name: value}}
import io, json, sys, tarfile

types = {'file': tarfile.REGTYPE, 'dir': tarfile.DIRTYPE, 'symlink': tarfile.SYMTYPE, 'hardlink': tarfile.LNKTYPE,
         'char': tarfile.CHRTYPE, 'block': tarfile.BLKTYPE, 'fifo': tarfile.FIFOTYPE}
out = io.BytesIO()
t = tarfile.open(fileobj=out, mode='w', format=tarfile.PAX_FORMAT)
for e in json.load(sys.stdin):
    ti = tarfile.TarInfo(e['name'])
    ti.type = types[e.get('type', 'file')]
    ti.mode = e.get('mode', 0o755 if e.get('type') == 'dir' else 0o644)
    ti.uid, ti.gid = e.get('uid', 0), e.get('gid', 0)
    ti.mtime = e.get('mtime', 1700000000)
    ti.linkname = e.get('linkname', '')
    ti.devmajor, ti.devminor = e.get('major', 0), e.get('minor', 0)
    if e.get('xattrs'):
        ti.pax_headers = {'SCHILY.xattr.' + k: v for k, v in e['xattrs'].items()}
    data = e.get('data', '').encode('utf-8', 'surrogateescape')
    if ti.type == tarfile.REGTYPE:
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    else:
        t.addfile(ti)
t.close()
sys.stdout.buffer.write(out.getvalue())
