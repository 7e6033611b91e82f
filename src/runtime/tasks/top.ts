import { readFile } from 'node:fs/promises';

/**
 * `docker top` without ps(1): the default columns (UID PID PPID C STIME TTY
 * TIME CMD) read from /proc for the container's host pids.
 */
const TITLES = ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD'];
const CLK_TCK = 100;

export async function topOf(pids: number[]): Promise<{ titles: string[]; processes: string[][] }> {
  const bootTime = await readBootTime();
  const users = await readUserNames();
  const uptime = Number((await readFile('/proc/uptime', 'utf8')).split(' ')[0]);
  const rows: string[][] = [];
  for (const pid of pids) {
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      // The command name may contain spaces and parentheses: fields start after the last ')'.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = f[1];
      const ttyNr = Number(f[4]);
      const cpuTicks = Number(f[11]) + Number(f[12]);
      const startTicks = Number(f[19]);
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      // ps -f shows the effective uid, by its name on the host when it has one.
      const euid = /^Uid:\s+\d+\s+(\d+)/m.exec(status)?.[1];
      const uid = euid === undefined ? '?' : (users.get(euid) ?? euid);
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean).join(' ');
      const elapsed = uptime - startTicks / CLK_TCK;
      const c = elapsed > 0 ? Math.floor((cpuTicks / CLK_TCK / elapsed) * 100) : 0;
      const started = new Date((bootTime + startTicks / CLK_TCK) * 1000);
      rows.push([uid, String(pid), ppid, String(c), hhmm(started), ttyName(ttyNr), cpuTime(cpuTicks / CLK_TCK), cmdline || `[${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))}]`]);
    } catch {
      // The process exited between listing and reading: skip it.
    }
  }
  return { titles: TITLES, processes: rows };
}

async function readBootTime(): Promise<number> {
  const s = await readFile('/proc/stat', 'utf8');
  return Number(/^btime (\d+)/m.exec(s)?.[1] ?? 0);
}

async function readUserNames(): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f.length > 2 && !names.has(f[2])) names.set(f[2], f[0]);
  }
  return names;
}

/** The tty of /proc/PID/stat's tty_nr: pts/N (majors 136-143), ttyN (major 4), or ? as ps prints it. */
export function ttyName(ttyNr: number): string {
  if (!ttyNr) return '?';
  const major = (ttyNr >> 8) & 0xfff;
  const minor = (ttyNr & 0xff) | ((ttyNr >> 12) & 0xfff00);
  if (major >= 136 && major <= 143) return `pts/${(major - 136) * 256 + minor}`;
  if (major === 4 && minor < 64) return `tty${minor}`;
  return '?';
}

function hhmm(d: Date): string {
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

function cpuTime(sec: number): string {
  const s = Math.floor(sec);
  return `${String(Math.floor(s / 3600)).padStart(2, '0')}:${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}
