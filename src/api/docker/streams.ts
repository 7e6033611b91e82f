/** Content types of a hijacked or logs stream: raw for a tty, docker's 8-byte framing otherwise. */
export const streamType = (tty: boolean): string => (tty ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream');
