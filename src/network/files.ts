/**
 * The files a container sees as /etc/hosts, /etc/resolv.conf and
 * /etc/hostname. Pure text generation following docker's rules; the
 * service writes them and the runtime bind-mounts them.
 */
export interface HostsInput {
  hostname: string;
  domainname?: string;
  /** The container's own addresses (one per attached network). */
  ips: string[];
  /** Extra names of the container itself (network aliases, container name). */
  ownNames: string[];
  /** Other containers on the same user networks. */
  peers: Array<{ ip: string; names: string[] }>;
  /** --add-host entries, "name:ip" (docker also accepts "name=ip"). */
  extraHosts: string[];
}

const defaultHosts = [
  '127.0.0.1\tlocalhost',
  '::1\tlocalhost ip6-localhost ip6-loopback',
  'fe00::0\tip6-localnet',
  'ff00::0\tip6-mcastprefix',
  'ff02::1\tip6-allnodes',
  'ff02::2\tip6-allrouters',
];

export function parseExtraHost(entry: string): { name: string; ip: string } {
  const m = /^([^:=]+)[:=](.+)$/.exec(entry);
  if (!m || !m[1] || !m[2]) throw new Error(`invalid --add-host "${entry}": expected HOST:IP`);
  const ip = m[2].replace(/^\[(.*)\]$/, '$1');
  return { name: m[1], ip };
}

export function hostsContent(h: HostsInput): string {
  const lines = [...defaultHosts];
  for (const e of h.extraHosts) {
    const { name, ip } = parseExtraHost(e);
    lines.push(`${ip}\t${name}`);
  }
  const own = unique([h.domainname ? `${h.hostname}.${h.domainname}` : '', h.hostname, ...h.ownNames].filter(Boolean));
  for (const ip of h.ips) lines.push(`${ip}\t${own.join(' ')}`);
  for (const p of h.peers) {
    const names = unique(p.names.filter(Boolean));
    if (names.length) lines.push(`${p.ip}\t${names.join(' ')}`);
  }
  return lines.join('\n') + '\n';
}

/** Host networking: the host's own /etc/hosts plus --add-host entries. */
export function hostModeHosts(hostText: string, extraHosts: string[]): string {
  const lines = hostText.replace(/\n*$/, '').split('\n');
  for (const e of extraHosts) {
    const { name, ip } = parseExtraHost(e);
    lines.push(`${ip}\t${name}`);
  }
  return lines.join('\n') + '\n';
}

export interface ResolvConf {
  nameservers: string[];
  search: string[];
  options: string[];
}

export function parseResolvConf(text: string): ResolvConf {
  const out: ResolvConf = { nameservers: [], search: [], options: [] };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const [key, ...vals] = line.split(/\s+/);
    if (key === 'nameserver' && vals[0]) out.nameservers.push(vals[0]);
    else if (key === 'search' || key === 'domain') out.search = vals;
    else if (key === 'options') out.options.push(...vals);
  }
  return out;
}

function isLoopback(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1' || ip === '0:0:0:0:0:0:0:1';
}

export interface ResolvInput {
  /** The host's resolv.conf text. */
  host: string;
  /** The stub resolver's upstream file (systemd-resolved's), if it exists. */
  stubUpstream?: string;
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  /** Used when no reachable nameserver is left; docker's 8.8.8.8 / 8.8.4.4. */
  fallback: string[];
  /** Host networking keeps loopback servers: they are reachable there. */
  hostNetwork?: boolean;
}

/**
 * Docker's rules: --dns replaces the nameservers; otherwise a host that
 * lists only loopback servers (a local stub such as 127.0.0.53) is replaced
 * by the stub's upstream list, loopback servers are dropped, and an empty
 * result falls back to `fallback`. --dns-search replaces the search list
 * ("." clears it); --dns-option replaces the options.
 */
export function resolvConfContent(r: ResolvInput): string {
  let base = parseResolvConf(r.host);
  let servers = base.nameservers;
  if (!r.hostNetwork && servers.length > 0 && servers.every(isLoopback) && r.stubUpstream !== undefined) {
    base = parseResolvConf(r.stubUpstream);
    servers = base.nameservers;
  }
  if (r.dns && r.dns.length) servers = r.dns;
  else if (!r.hostNetwork) {
    servers = servers.filter((s) => !isLoopback(s));
    if (servers.length === 0) servers = r.fallback;
  }
  let search = base.search;
  if (r.dnsSearch && r.dnsSearch.length) search = r.dnsSearch.filter((s) => s !== '.');
  const options = r.dnsOptions && r.dnsOptions.length ? r.dnsOptions : base.options;
  const lines: string[] = [];
  if (search.length) lines.push(`search ${search.join(' ')}`);
  for (const s of servers) lines.push(`nameserver ${s}`);
  if (options.length) lines.push(`options ${options.join(' ')}`);
  return lines.join('\n') + '\n';
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}
